-- Delete up to A[2] stored events whose position key is below A[1] (occurred before a moment), oldest first.
-- Reply: how many were deleted.
local positions = redis.call('ZRANGEBYLEX', KEY_EVENT_ORDER, '-', '(' .. A[1], 'LIMIT', 0, A[2])
for _, position in ipairs(positions) do
  local id = string.sub(position, 33)
  local value = redis.call('HGET', KEY_EVENTS, id)
  if value then
    local _, _, task = split_event(value)
    if task ~= '' then redis.call('ZREM', task_events_key(task), position) end
    redis.call('HDEL', KEY_EVENTS, id)
  end
end
if #positions > 0 then redis.call('ZREMRANGEBYLEX', KEY_EVENT_ORDER, '-', '[' .. positions[#positions]) end
return reply(#positions)

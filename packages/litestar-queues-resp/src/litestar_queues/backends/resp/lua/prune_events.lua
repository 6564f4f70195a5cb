-- Delete up to A[2] stored events whose position key is below A[1] (occurred before a moment), oldest first.
-- Reply: how many were deleted.
local positions = redis.call('ZRANGEBYLEX', KEY_EVENT_ORDER, '-', '(' .. A[1], 'LIMIT', 0, A[2])
for _, position in ipairs(positions) do
  local id = string.sub(position, 33)
  local value = redis.call('HGET', KEY_EVENTS, id)
  if value then
    local k, q, t = split_event(value)
    for _, key in ipairs(event_index_keys(k, q, t)) do redis.call('ZREM', key, position) end
    redis.call('HDEL', KEY_EVENTS, id)
  else
    redis.call('ZREM', KEY_EVENT_ORDER, position)
  end
end
return reply(#positions)

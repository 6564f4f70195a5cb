-- One page of stored events in position order. A: type, queue, task id (each "" = any, else "=" .. value), lower
-- and upper ZRANGEBYLEX bounds, limit, newest first (1/0), window (most events examined). It walks the task's index when a task is given, else
-- every event's; the caller folded the cursor and the time range into the bounds; the other filters are checked
-- here. Reply: {next cursor (position key) or nil, stored event...}.
local kind, queue, task = opt_text(A[1]), opt_text(A[2]), opt_text(A[3])
local low, high, limit, reverse = A[4], A[5], tonumber(A[6]), A[7] == '1'
local key = KEY_EVENT_ORDER
if task then key = task_events_key(task) end
local window = tonumber(A[8])
local batch_size = math.max(limit + 1, 100)
local found, positions = {}, {}
local scanned, last, exhausted = 0, false, false
while #found <= limit and scanned < window do
  local batch
  local take = math.min(batch_size, window - scanned)
  if reverse then
    batch = redis.call('ZREVRANGEBYLEX', key, high, low, 'LIMIT', 0, take)
  else
    batch = redis.call('ZRANGEBYLEX', key, low, high, 'LIMIT', 0, take)
  end
  for _, position in ipairs(batch) do
    scanned = scanned + 1
    last = position
    local value = redis.call('HGET', KEY_EVENTS, string.sub(position, 33))
    if value then
      local k, q, t, start = split_event(value)
      if (not kind or k == kind) and (not queue or q == queue) and (not task or t == task) then
        found[#found + 1] = string.sub(value, start)
        positions[#positions + 1] = position
        if #found > limit then break end
      end
    end
  end
  if #batch < take then exhausted = true break end
  if reverse then high = '(' .. last else low = '(' .. last end
end
local next_cursor = false
if #found > limit then
  found[#found] = nil
  next_cursor = positions[limit]
elseif not exhausted and last then
  next_cursor = last
end
local out = {next_cursor}
for i, stored in ipairs(found) do out[i + 1] = stored end
return reply(out)

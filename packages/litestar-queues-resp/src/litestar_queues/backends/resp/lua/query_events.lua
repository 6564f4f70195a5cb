-- One page of stored events in position order. A: index key suffix ("" = every event, else e.g. "evt:<task>"),
-- type, queue, task id (each "" = any, else "=" .. value), lower and upper ZRANGEBYLEX bounds, limit, newest
-- first (1/0). The caller picked the index of the most selective filter and folded the cursor and the time range
-- into the bounds; the other filters are checked here. Reply: {next cursor (position key) or nil, json...}.
local suffix, kind, queue, task = A[1], opt_text(A[2]), opt_text(A[3]), opt_text(A[4])
local low, high, limit, reverse = A[5], A[6], tonumber(A[7]), A[8] == '1'
local key = KEY_EVENT_ORDER
if suffix ~= '' then key = P .. ':' .. suffix end
local SCAN_BUDGET = 20000
local batch_size = math.max(limit + 1, 100)
local found, positions = {}, {}
local scanned, last, exhausted = 0, false, false
while #found <= limit and scanned < SCAN_BUDGET do
  local batch
  if reverse then
    batch = redis.call('ZREVRANGEBYLEX', key, high, low, 'LIMIT', 0, batch_size)
  else
    batch = redis.call('ZRANGEBYLEX', key, low, high, 'LIMIT', 0, batch_size)
  end
  for _, position in ipairs(batch) do
    scanned = scanned + 1
    last = position
    local value = redis.call('HGET', KEY_EVENTS, string.sub(position, 33))
    if value then
      local k, q, t, json = split_event(value)
      if (not kind or k == kind) and (not queue or q == queue) and (not task or t == task) then
        found[#found + 1] = json
        positions[#positions + 1] = position
        if #found > limit then break end
      end
    end
  end
  if #batch < batch_size then exhausted = true break end
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
for i, json in ipairs(found) do out[i + 1] = json end
return reply(out)

-- Counts by status and the scheduled_at of the oldest due pending record at A[1], for queue A[2] ("" = all
-- queues, else "=" .. name). Counts are ZCARDs of the (queue, status) indexes: O(queues), no scan.
-- Reply: {oldest or nil, status, count, status, count, ...}.
local now = A[1]
local nnow = tonumber(now)
local queue = opt_text(A[2])
local queues
if queue then queues = {queue} else queues = redis.call('SMEMBERS', KEY_QUEUES) end
local STATUSES = {'pending', 'running', 'completed', 'failed', 'cancelled', 'expired'}
local totals = {0, 0, 0, 0, 0, 0}
local oldest = false
for _, q in ipairs(queues) do
  for i, s in ipairs(STATUSES) do totals[i] = totals[i] + redis.call('ZCARD', P .. ':ix:' .. q .. ':' .. s) end
  for _, p in ipairs(redis.call('ZRANGE', P .. ':pp:' .. q, '0', '-1')) do
    local first = due_entries(pending_key(q, p), now, nnow, 1)[1]
    if first and (not oldest or first[2] < oldest) then oldest = first[2] end
  end
end
local out = {false}
if oldest then out[1] = string.format('%d', oldest) end
for i, s in ipairs(STATUSES) do
  out[#out + 1] = s
  out[#out + 1] = totals[i]
end
return reply(out)

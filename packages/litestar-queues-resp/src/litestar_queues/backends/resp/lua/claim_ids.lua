-- Per-queue cluster layout, second half of a claim over several queues: claim those of the records A[5..] of queue
-- A[4] that are still due, unexpired and pending at now A[2] (the ids peek chose; one taken meanwhile is skipped), for
-- owner A[1], lease until A[3], in the given order. Nothing when the queue was paused meanwhile.
local owner, now, lease, q = A[1], A[2], A[3], A[4]
local nnow = tonumber(now)
local out = {}
if redis.call('HEXISTS', KEY_PAUSED, q) == 1 then return reply(out) end
for i = 5, #A do
  local id = A[i]
  local v = redis.call('HMGET', rkey(id), 's', 'q', 'p', 'x')
  if v[1] == 'pending' and v[2] == q then
    local due = redis.call('ZSCORE', pending_key(q, v[3]), id)
    local nx = v[4] and tonumber(v[4])
    if due and tonumber(due) <= nnow and not (nx and nx <= nnow) then
      claim_one(id, q, v[3], v[4], owner, now, lease)
      out[#out + 1] = read_record(id)
    end
  end
end
return reply(out)

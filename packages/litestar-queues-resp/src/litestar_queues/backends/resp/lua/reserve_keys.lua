-- Per-queue cluster layout: reserve the dedup keys of new records before the records are written in their queues'
-- slots. A: triples key, queue, id. P:ka holds each key's holder ("queue NUL id NUL reserved at", server clock): the
-- last record that took it. Finishing does not release it (that happens in another slot), so a holder may have
-- ended: the client checks it in its queue and takes the key over with take_key. Reply: per triple, 1 when the key
-- is now the record's, else {holder queue, holder id, age of the reservation in microseconds}.
local now = server_now()
local out = {}
for i = 1, #A, 3 do
  local key, q, id = A[i], A[i + 1], A[i + 2]
  local holder = redis.call('HGET', KEY_ACTIVE, key)
  if not holder then
    redis.call('HSET', KEY_ACTIVE, key, q .. '\0' .. id .. '\0' .. now)
    out[#out + 1] = 1
  else
    local hq, hid, at = split_holder(holder)
    if hq == q and hid == id then
      -- renewed, so that a maintenance sweep that saw the record ended (before a requeue) cannot release it now
      redis.call('HSET', KEY_ACTIVE, key, q .. '\0' .. id .. '\0' .. now)
      out[#out + 1] = 1
    else
      out[#out + 1] = {hq, hid, now - tonumber(at)}
    end
  end
end
return reply(out)

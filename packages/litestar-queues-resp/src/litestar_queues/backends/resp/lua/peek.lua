-- Per-queue cluster layout, first half of a claim over several queues: up to A[1] due, unexpired pending records of
-- queue A[3] at now A[2] in due order, as flat triples {id, priority, scheduled_at}; nothing when the queue is paused.
-- The client merges the queues' triples and claims the chosen ids with claim_ids. Changes nothing but dropping
-- index entries of records that are no longer pending.
local limit, now, q = tonumber(A[1]), A[2], A[3]
local nnow = tonumber(now)
local out = {}
if redis.call('HEXISTS', KEY_PAUSED, q) == 1 then return reply(out) end
for _, p in ipairs(redis.call('ZREVRANGE', P .. ':pp:' .. q, '0', '-1')) do
  local remaining = limit - #out / 3
  if remaining <= 0 then break end
  for _, entry in ipairs(due_entries(pending_key(q, p), now, nnow, remaining)) do
    out[#out + 1] = entry[1]
    out[#out + 1] = p
    out[#out + 1] = string.format('%d', entry[2])
  end
end
return reply(out)

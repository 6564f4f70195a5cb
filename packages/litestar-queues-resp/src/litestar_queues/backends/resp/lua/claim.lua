-- Claim up to A[2] due records of the queues A[5..] for owner A[1] at now A[3], lease until A[4]; paused queues are
-- skipped.
-- Due order: priority descending, then scheduled_at, then id (the member order of each pending zset).
local owner, limit, now, lease = A[1], tonumber(A[2]), A[3], A[4]
local nnow = tonumber(now)
local prios, by_prio, seen_queue = {}, {}, {}
for i = 5, #A do
  local q = A[i]
  if not seen_queue[q] then
    seen_queue[q] = true
    local paused = redis.call('HEXISTS', KEY_PAUSED, q) == 1
    for _, p in ipairs(paused and {} or redis.call('ZRANGE', P .. ':pp:' .. q, '0', '-1')) do
      if not by_prio[p] then
        by_prio[p] = {}
        prios[#prios + 1] = p
      end
      table.insert(by_prio[p], q)
    end
  end
end
table.sort(prios, function(a, b) return tonumber(a) > tonumber(b) end)

local out = {}
for _, p in ipairs(prios) do
  local remaining = limit - #out
  if remaining <= 0 then break end
  local queues = by_prio[p]
  local picked = {}
  for _, q in ipairs(queues) do
    for _, entry in ipairs(due_entries(pending_key(q, p), now, nnow, remaining)) do
      picked[#picked + 1] = {entry[1], entry[2], q, entry[3]}
    end
  end
  if #queues > 1 then
    table.sort(picked, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      return bytes_less(a[1], b[1])
    end)
  end
  for i = 1, math.min(remaining, #picked) do
    local id = picked[i][1]
    claim_one(id, picked[i][3], p, picked[i][4], owner, now, lease)
    out[#out + 1] = read_record(id)
  end
end
return reply(out)

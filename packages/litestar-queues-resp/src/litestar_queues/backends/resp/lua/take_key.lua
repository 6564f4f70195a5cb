-- Per-queue cluster layout: give dedup key A[1] to record A[4] of queue A[3] if its holder is still record A[2] (or
-- nobody: the maintenance released it meanwhile). Reply: 1 when taken, 0 when another record took it first.
local holder = redis.call('HGET', KEY_ACTIVE, A[1])
if holder then
  local _, hid = split_holder(holder)
  if hid ~= A[2] then return reply(0) end
end
redis.call('HSET', KEY_ACTIVE, A[1], A[3] .. '\0' .. A[4] .. '\0' .. server_now())
return reply(1)

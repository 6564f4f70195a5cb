-- Claim the pending record A[1] whatever its scheduled_at, for owner A[2] at A[3], lease until A[4].
local id = A[1]
local v = redis.call('HMGET', rkey(id), 's', 'q', 'p', 'x')
if v[1] ~= 'pending' then return reply(false) end
claim_one(id, v[2], v[3], v[4], A[2], A[3], A[4])
return reply(read_record(id))

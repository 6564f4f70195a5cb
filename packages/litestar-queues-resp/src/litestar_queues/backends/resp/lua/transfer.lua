-- Hand the running attempt A[1], held by owner A[2] with token A[3], to owner A[4] with a lease until A[5].
-- Reply: the updated row, or nil when the fence failed.
local id = A[1]
local rk = rkey(id)
local v = redis.call('HMGET', rk, 's', 'o', 't')
if v[1] ~= 'running' or v[2] ~= A[2] or v[3] ~= A[3] then return reply(false) end
redis.call('HINCRBY', rk, 't', '1')
redis.call('HSET', rk, 'o', A[4], 'le', A[5])
redis.call('ZADD', KEY_RUNNING, A[5], id)
return reply(read_record(id))

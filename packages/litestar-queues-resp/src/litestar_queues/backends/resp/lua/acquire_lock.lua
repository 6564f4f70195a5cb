-- Take or renew lock A[1] for owner A[2] at A[3] until A[4]; 1 if the owner holds it afterwards.
local lk = P .. ':lock:' .. A[1]
local v = redis.call('HMGET', lk, 'o', 'u')
if v[1] and v[1] ~= A[2] and tonumber(v[2]) > tonumber(A[3]) then return reply(0) end
redis.call('HSET', lk, 'o', A[2], 'u', A[4])
return reply(1)

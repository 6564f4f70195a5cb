-- Release lock A[1] if owner A[2] holds it.
local lk = P .. ':lock:' .. A[1]
if redis.call('HGET', lk, 'o') == A[2] then redis.call('DEL', lk) end
return reply(1)

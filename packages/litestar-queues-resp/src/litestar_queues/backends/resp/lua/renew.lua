-- Extend held leases to A[1]. A[2..]: (id, owner, token) triples. Reply: 'h' held, 'c' cancel requested, 'l' lost.
local lease = A[1]
local out = {}
for i = 2, #A - 2, 3 do
  local id, owner, token = A[i], A[i + 1], A[i + 2]
  local rk = rkey(id)
  local v = redis.call('HMGET', rk, 's', 'o', 't', 'c')
  if v[1] == 'running' and v[2] == owner and v[3] == token then
    redis.call('HSET', rk, 'le', lease)
    redis.call('ZADD', KEY_RUNNING, lease, id)
    if v[4] then out[#out + 1] = 'c' else out[#out + 1] = 'h' end
  else
    out[#out + 1] = 'l'
  end
end
return reply(out)

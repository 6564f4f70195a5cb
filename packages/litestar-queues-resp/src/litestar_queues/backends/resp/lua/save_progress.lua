-- Store the progress of running attempts under their fences. A: one array per update: id, owner, token, progress
-- JSON, in order (a later update of the same record wins). Reply: nothing.
for _, u in ipairs(A) do
  local rk = rkey(u[1])
  local v = redis.call('HMGET', rk, 's', 'o', 't')
  if v[1] == 'running' and v[2] == u[2] and v[3] == u[3] then redis.call('HSET', rk, 'g', u[4]) end
end
return reply(false)

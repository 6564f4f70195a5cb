-- JSON of workers alive at A[1]; forgets workers whose deadline passed before A[2].
local gone = redis.call('ZRANGEBYSCORE', P .. ':wd', '-inf', '(' .. A[2])
for _, id in ipairs(gone) do
  redis.call('HDEL', P .. ':w', id)
  redis.call('ZREM', P .. ':wd', id)
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':wd', A[1], '+inf')) do
  local info = redis.call('HGET', P .. ':w', id)
  if info then out[#out + 1] = info end
end
return reply(out)

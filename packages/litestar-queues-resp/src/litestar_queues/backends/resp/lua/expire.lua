-- Expire up to A[2] pending records with expires_at <= A[1]; reply how many.
local now = A[1]
local count = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEY_EXPIRY, '-inf', now, 'LIMIT', '0', A[2])) do
  if redis.call('HGET', rkey(id), 's') == 'pending' then
    end_pending(id, 'expired', now)
    count = count + 1
  else
    redis.call('ZREM', KEY_EXPIRY, id)
  end
end
return reply(count)

-- Forget worker A[1].
redis.call('HDEL', P .. ':w', A[1])
redis.call('ZREM', P .. ':wd', A[1])
return reply(1)

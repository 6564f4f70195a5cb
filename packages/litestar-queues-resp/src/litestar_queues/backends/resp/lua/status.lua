-- Status of record A[1] (nil when missing).
return reply(redis.call('HGET', rkey(A[1]), 's'))

-- Resume queue A[1]; its due records are work again, so its waiters are woken. Reply: 1 when it was paused, else 0.
local resumed = redis.call('HDEL', KEY_PAUSED, A[1])
if resumed == 1 then wake_queue(A[1]) end
return reply(resumed)

-- Every queue that ever held a record or was paused (per-queue cluster layout: the queues to visit).
return reply(redis.call('SMEMBERS', KEY_QUEUES))

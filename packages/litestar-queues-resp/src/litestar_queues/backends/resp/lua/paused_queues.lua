-- Every paused queue and when it was paused: {queue, micros, queue, micros, ...}.
return reply(redis.call('HGETALL', KEY_PAUSED))

-- Add the queues A[1..] to the known queues (per-queue cluster layout: before their first record is written).
redis.call('SADD', KEY_QUEUES, unpack(A))
return reply(false)

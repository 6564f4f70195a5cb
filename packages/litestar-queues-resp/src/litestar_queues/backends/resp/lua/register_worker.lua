-- Insert or replace worker A[1] (JSON A[2]) alive until A[3].
redis.call('HSET', P .. ':w', A[1], A[2])
redis.call('ZADD', P .. ':wd', A[3], A[1])
return reply(1)

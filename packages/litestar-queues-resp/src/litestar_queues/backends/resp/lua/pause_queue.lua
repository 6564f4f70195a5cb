-- Pause queue A[1] at A[2] unless it is paused already (the first pause keeps its time).
-- Reply: 1 when this call paused it, else 0. Nobody is woken: nothing became claimable.
return reply(redis.call('HSETNX', KEY_PAUSED, A[1], A[2]))

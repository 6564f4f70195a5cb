-- Cancel A[1] at A[2]: pending becomes cancelled, running gets cancel_requested, terminal stays.
local id, now = A[1], A[2]
local s = redis.call('HGET', rkey(id), 's')
if not s then return reply(false) end
if s == 'pending' then
  end_pending(id, 'cancelled', now)
elseif s == 'running' then
  redis.call('HSET', rkey(id), 'c', '1')
end
return reply(read_record(id))

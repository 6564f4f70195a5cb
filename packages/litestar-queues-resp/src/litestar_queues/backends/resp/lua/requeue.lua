-- Manual retry of A[1] at A[2] (expires_at is cleared: a manual retry must not expire at once).
-- Reply: {'ok', row}, {'ok', nil} when missing, or {'dup', holder id}.
local id, now = A[1], A[2]
local rk = rkey(id)
local v = redis.call('HMGET', rk, 's', 'q', 'p', 'k', 'x')
local s = v[1]
if not s then return reply({'ok', false}) end
if s == 'failed' or s == 'cancelled' or s == 'expired' then
  local q, p, k = v[2], v[3], v[4]
  if k then
    local holder = redis.call('HGET', KEY_ACTIVE, k)
    if holder and holder ~= id and redis.call('EXISTS', rkey(holder)) == 1 then return reply({'dup', holder}) end
    redis.call('HSET', KEY_ACTIVE, k, id)
  end
  redis.call('HSET', rk, 's', 'pending', 'sa', now, 'a', '0')
  redis.call('HDEL', rk, 'fa', 'r', 'e', 'c', 'x', 'g')
  redis.call('ZREM', KEY_FINISHED, id)
  redis.call('ZREM', KEY_EXPIRY, id)
  add_pending(id, q, p, now, false)
  move_index(id, q, s, 'pending')
  wake_queue(q)
end
return reply({'ok', read_record(id)})

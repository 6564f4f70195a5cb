-- End running attempts under their fences. A: one array per attempt: id, owner, token, now,
-- only_if_lease_expired (1/0), status, result ("" = None), error ("" = None), scheduled_at (pending),
-- refund (1/0), retention cutoff ("" = off). Reply: per attempt, the updated row, or nil when the fence failed.
-- A pending outcome of a record whose cancellation was requested ends it cancelled instead.
local function finish_one(id, owner, token, now, only_expired, status, result, err, sa, refund, cutoff)
  local rk = rkey(id)
  local v = redis.call('HMGET', rk, 's', 'o', 't', 'le', 'q', 'p', 'k', 'x', 'c')
  if v[1] ~= 'running' or v[2] ~= owner or v[3] ~= token then return false end
  if only_expired == '1' and not (v[4] and tonumber(v[4]) <= tonumber(now)) then return false end
  if status == 'pending' and v[9] then status = 'cancelled' end -- a cancel request wins over a retry
  local q = v[5]
  local set, unset = {'s', status}, {'o', 'le', 'c'}
  if err ~= '' then
    set[#set + 1] = 'e'
    set[#set + 1] = err
  else
    unset[#unset + 1] = 'e'
  end
  redis.call('ZREM', KEY_RUNNING, id)
  if status == 'pending' then
    set[#set + 1] = 'sa'
    set[#set + 1] = sa
    redis.call('HSET', rk, unpack(set))
    redis.call('HDEL', rk, unpack(unset))
    if refund == '1' then redis.call('HINCRBY', rk, 'a', '-1') end
    add_pending(id, q, v[6], sa, v[8])
    move_index(id, q, 'running', 'pending')
    wake_queue(q)
  else
    set[#set + 1] = 'fa'
    set[#set + 1] = now
    if result ~= '' then
      set[#set + 1] = 'r'
      set[#set + 1] = result
    else
      unset[#unset + 1] = 'r'
    end
    redis.call('HSET', rk, unpack(set))
    redis.call('HDEL', rk, unpack(unset))
    redis.call('ZADD', KEY_FINISHED, now, id)
    move_index(id, q, 'running', status)
    release_key(id, v[7])
    announce_finish(id, status)
    if cutoff ~= '' then sweep_finished(cutoff, 2) end
  end
  return read_record(id)
end

local out = {}
for i, f in ipairs(A) do out[i] = finish_one(unpack(f)) end
return reply(out)

-- Insert records with id and key dedup. A: one array of 20 strings per record (codec.encode_insert).
-- Reply: per record, 1 when stored, else the row of the existing record it resolved to.
-- Index writes are grouped per key and sent once per key at the end: a chunk of records costs about three
-- calls per record instead of ten. Dedup reads only the record hashes, the bodies and the active-key hash, which
-- are written immediately, so later records of the same chunk see earlier ones.
-- Every record is checked before anything is written, so a bad one fails the call without leaving half of it.
local STATUS = {pending = true, running = true, completed = true, failed = true, cancelled = true, expired = true}
for _, f in ipairs(A) do
  local bad = false
  if #f ~= 20 then bad = 'the record'
  elseif not STATUS[f[6]] then bad = 'status'
  elseif not tonumber(f[3]) then bad = 'priority'
  elseif not tonumber(f[7]) then bad = 'attempts'
  elseif not tonumber(f[8]) then bad = 'token'
  elseif not tonumber(f[9]) then bad = 'scheduled_at'
  elseif not tonumber(f[18]) then bad = 'created_at'
  elseif f[10] ~= '' and not tonumber(f[10]) then bad = 'expires_at'
  elseif f[11] ~= '' and not tonumber(f[11]) then bad = 'started_at'
  elseif f[12] ~= '' and not tonumber(f[12]) then bad = 'finished_at'
  elseif f[13] ~= '' and not tonumber(f[13]) then bad = 'lease_expires_at'
  end
  if bad then return redis.error_reply('invalid record ' .. tostring(f[1]) .. ': ' .. bad .. ' cannot be stored') end
end

local out = {}
local zsets, zset_order, queues, woken = {}, {}, {}, {}
local function zadd(key, score, member)
  local list = zsets[key]
  if not list then
    list = {}
    zsets[key] = list
    zset_order[#zset_order + 1] = key
  end
  list[#list + 1] = score
  list[#list + 1] = member
end
local task_keys, status_keys, pending_keys = {}, {}, {}
-- append an optional field unless it is None (""); a text field loses its marker (see opt_text)
local function put(fields, name, value, text)
  if value ~= '' then
    fields[#fields + 1] = name
    fields[#fields + 1] = text and string.sub(value, 2) or value
  end
end
for i, f in ipairs(A) do
  local id, q, p, n, k, s = f[1], f[2], f[3], f[4], opt_text(f[5]), f[6]
  local rk = rkey(id)
  local holder = false
  if k then
    if redis.call('EXISTS', rk) == 1 then
      holder = id
    else
      holder = redis.call('HGET', KEY_ACTIVE, k)
      if holder and redis.call('EXISTS', rkey(holder)) == 0 then holder = false end
    end
    if not holder then redis.call('SET', bkey(id), f[19]) end
  elseif not redis.call('SET', bkey(id), f[19], 'NX') then
    -- without a key, writing the body is the id check: a record and its body are written and deleted together
    -- (a body left without its record is replaced)
    if redis.call('EXISTS', rk) == 1 then holder = id else redis.call('SET', bkey(id), f[19]) end
  end
  if holder then
    out[i] = read_record(holder)
  else
    local sa = f[9]
    local fields = {'s', s, 'q', q, 'p', p, 'n', n, 'a', f[7], 't', f[8], 'sa', sa}
    put(fields, 'k', f[5], true)
    put(fields, 'x', f[10])
    put(fields, 'st', f[11])
    put(fields, 'fa', f[12])
    put(fields, 'le', f[13])
    put(fields, 'o', f[14], true)
    put(fields, 'c', f[15])
    put(fields, 'r', f[16])
    put(fields, 'e', f[17])
    put(fields, 'g', f[20])
    redis.call('HSET', rk, unpack(fields))
    local task_key = task_keys[n]
    if not task_key then
      task_key = P .. ':it:' .. n
      task_keys[n] = task_key
    end
    zadd(task_key, 0, id)
    local status_key = status_keys[q .. '\0' .. s]
    if not status_key then
      status_key = P .. ':ix:' .. q .. ':' .. s
      status_keys[q .. '\0' .. s] = status_key
      queues[q] = true
    end
    zadd(status_key, 0, id)
    if s == 'pending' then
      local pending = pending_keys[q .. '\0' .. p]
      if not pending then
        pending = pending_key(q, p)
        pending_keys[q .. '\0' .. p] = pending
        zadd(P .. ':pp:' .. q, p, p)
      end
      zadd(pending, sa, id)
      local x = opt_num(f[10])
      if x then zadd(KEY_EXPIRY, x, id) end
      woken[q] = true
    elseif s == 'running' then
      zadd(KEY_RUNNING, opt_num(f[13]) or '+inf', id)
    else
      zadd(KEY_FINISHED, opt_num(f[12]) or '+inf', id)
    end
    if k then
      zadd(P .. ':kh:' .. k, f[18], id)
      if s == 'pending' or s == 'running' then redis.call('HSET', KEY_ACTIVE, k, id) end
    end
    out[i] = 1
  end
end
for _, key in ipairs(zset_order) do
  local list = zsets[key]
  for start = 1, #list, 2000 do
    redis.call('ZADD', key, unpack(list, start, math.min(start + 1999, #list)))
  end
end
for q in pairs(queues) do redis.call('SADD', KEY_QUEUES, q) end
for q in pairs(woken) do wake_queue(q) end
return reply(out)

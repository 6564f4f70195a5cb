-- Insert records with id and key dedup. A: one array per record (codec.encode_insert, which checks the values a
-- command could refuse before sending): id, queue, priority, task name, scheduled_at, created_at, body; then, unless
-- the record is a new one (pending, no attempts, token 0, every optional field None), status, attempts, token, key,
-- expires_at, started_at, finished_at, lease_expires_at, owner, cancel_requested, result, error, progress.
-- Reply: per record, 1 when stored, else the row of the existing record it resolved to.
-- A lone record's index writes go out as they come. Of several records, they are grouped per key and sent once per
-- key at the end: a chunk of records costs about two calls per record instead of eight. Dedup reads only the record
-- hashes, the bodies and the active-key hash, which are written immediately, so later records of a chunk see
-- earlier ones.
local grouped = #A > 1
-- of a chunk: key -> {score, member, ...}, the keys in first-use order; the pending sets, queues woken and queues
-- registered so far
local zsets, zset_order = grouped and {}, grouped and {}
local pendings, woken, listed = grouped and {}, grouped and {}, grouped and {}
local function zadd(key, score, member)
  if not grouped then
    redis.call('ZADD', key, score, member)
    return
  end
  local list = zsets[key]
  if not list then
    list = {}
    zsets[key] = list
    zset_order[#zset_order + 1] = key
  end
  list[#list + 1] = score
  list[#list + 1] = member
end
-- whether `name` is new to the chunk's set `seen` (always for a lone record), noting it
local function first(seen, name)
  if not grouped then return true end
  if seen[name] then return false end
  seen[name] = true
  return true
end
-- the status, attempts, token and optional fields of record f as HSET arguments: a new record's, or those given, the
-- optional ones that are None ("") left out and text fields without their marker (see opt_text)
local function state_fields(f)
  if not f[8] then return 's', 'pending', 'a', '0', 't', '0' end
  local fields = {'s', f[8], 'a', f[9], 't', f[10]}
  local function put(name, value, text)
    if value ~= '' then
      fields[#fields + 1] = name
      fields[#fields + 1] = text and string.sub(value, 2) or value
    end
  end
  put('k', f[11], true)
  put('x', f[12])
  put('st', f[13])
  put('fa', f[14])
  put('le', f[15])
  put('o', f[16], true)
  put('c', f[17])
  put('r', f[18])
  put('e', f[19])
  put('g', f[20])
  return unpack(fields)
end
local out = {}
for i = 1, #A do
  local f = A[i]
  local id, q, p, n, sa, given = f[1], f[2], f[3], f[4], f[5], f[8]
  local s = given or 'pending'
  local k = given and opt_text(f[11])
  local rk = rkey(id)
  local holder = false
  if k then
    if redis.call('EXISTS', rk) == 1 then
      holder = id
    else
      holder = redis.call('HGET', KEY_ACTIVE, k)
      if holder and redis.call('EXISTS', rkey(holder)) == 0 then holder = false end
    end
    if not holder then redis.call('SET', bkey(id), f[7]) end
  elseif not redis.call('SET', bkey(id), f[7], 'NX') then
    -- without a key, writing the body is the id check: a record and its body are written and deleted together
    -- (a body left without its record is replaced)
    if redis.call('EXISTS', rk) == 1 then holder = id else redis.call('SET', bkey(id), f[7]) end
  end
  if holder then
    out[i] = read_record(holder)
  else
    redis.call('HSET', rk, 'q', q, 'p', p, 'n', n, 'sa', sa, state_fields(f))
    zadd(P .. ':it:' .. n, '0', id)
    zadd(P .. ':ix:' .. q .. ':' .. s, '0', id)
    if s == 'pending' then
      local pending = pending_key(q, p)
      if first(pendings, pending) and redis.call('ZADD', P .. ':pp:' .. q, 'NX', p, p) == 1 then
        redis.call('SADD', KEY_QUEUES, q)
      end
      zadd(pending, sa, id)
      local x = given and opt_num(f[12])
      if x then zadd(KEY_EXPIRY, x, id) end
      if first(woken, q) then wake_queue(q) end
    else
      if first(listed, q) then redis.call('SADD', KEY_QUEUES, q) end
      if s == 'running' then
        zadd(KEY_RUNNING, opt_num(f[15]) or '+inf', id)
      else
        zadd(KEY_FINISHED, opt_num(f[14]) or '+inf', id)
      end
    end
    if k then
      zadd(P .. ':kh:' .. k, f[6], id)
      if s == 'pending' or s == 'running' then redis.call('HSET', KEY_ACTIVE, k, id) end
    end
    out[i] = 1
  end
end
if grouped then
  for _, key in ipairs(zset_order) do
    local list = zsets[key]
    for start = 1, #list, 2000 do
      redis.call('ZADD', key, unpack(list, start, math.min(start + 1999, #list)))
    end
  end
end
return reply(out)

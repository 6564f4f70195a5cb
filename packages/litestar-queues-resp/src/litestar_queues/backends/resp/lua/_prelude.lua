-- Shared helpers. Blocks are separated by blank lines; a script gets the first block and, in this order,
-- every block defining a name it uses (scripts.py links them), so no call pays for helpers it never runs.
-- KEYS[1] is the key prefix: every key a script touches is "<prefix>:...", so a prefix with a hash tag
-- ("{app}") keeps them all in one cluster slot. In the per-queue cluster layout (slots.py) it is the prefix of
-- one queue's keys ("app{q:emails}"), and ARGV[3] the backend's prefix, which wakeup channels keep (C).
-- ARGV[1] is the script's arguments as one MessagePack array (A); ARGV[2] is "p" when the reply must be
-- MessagePack too (one bulk string instead of nested arrays: far cheaper for the client to parse).
-- Times are integer microseconds since the epoch, passed and stored as decimal strings. Lua compares
-- them with tonumber (exact below 2^53, i.e. until the year 2255) and never formats them back.
local P = KEYS[1]
local A = cmsgpack.unpack(ARGV[1])
local C = ARGV[3] or P
local function reply(value)
  if ARGV[2] == 'p' then return cmsgpack.pack(value) end
  return value
end

local KEY_ACTIVE = P .. ':ka'

local KEY_RUNNING = P .. ':run'

local KEY_EXPIRY = P .. ':exp'

local KEY_FINISHED = P .. ':fin'

-- every queue that ever held a record (the set only grows). A queue's first record registers it; a pending record
-- whose priority its queue's priority set (pp:<queue>) holds already does not need to: only a record of the queue,
-- which registered it, can have put the priority there.
local KEY_QUEUES = P .. ':queues'

-- paused queue -> when it was paused (microseconds)
local KEY_PAUSED = P .. ':paused'

local function rkey(id) return P .. ':r:' .. id end

local function bkey(id) return P .. ':b:' .. id end

local function pending_key(q, p) return P .. ':pq:' .. q .. ':' .. p end

-- the event history: one hash of stored events (id -> "type NUL queue NUL task id NUL stored event", "" where
-- None), the position index of every event, and one per task (members: the position as 32 hex digits, then the
-- id; see codec.event_position_key). Queries by type or queue walk one of them and check the rest.
local KEY_EVENTS = P .. ':ev'

local KEY_EVENT_ORDER = P .. ':evx'

local function task_events_key(task) return P .. ':evt:' .. task end

-- the progress of running attempts, stored under their fences: one {id, owner, token, progress JSON} per update,
-- in order (a later update of the same record wins)
local function save_progress(updates)
  for _, u in ipairs(updates) do
    local rk = rkey(u[1])
    local v = redis.call('HMGET', rk, 's', 'o', 't')
    if v[1] == 'running' and v[2] == u[2] and v[3] == u[3] then redis.call('HSET', rk, 'g', u[4]) end
  end
end

-- a stored event's type, queue, task id ("" where None), and where the event as stored starts in the value
local function split_event(value)
  local a = string.find(value, '\0', 1, true)
  local b = string.find(value, '\0', a + 1, true)
  local c = string.find(value, '\0', b + 1, true)
  return string.sub(value, 1, a - 1), string.sub(value, a + 1, b - 1), string.sub(value, b + 1, c - 1), c + 1
end

-- "" means None for optional values; optional strings carry a one-character "=" marker so "" stays a value.
local function opt_text(v) if v == '' then return false end return string.sub(v, 2) end

-- "" means None
local function opt_num(v) if v == '' then return false end return v end

-- the state hash fields in this order (codec.decode_record's), the body, and the id (so a record whose body is
-- unreadable is still named)
local function read_record(id)
  local row = redis.call('HMGET', rkey(id), 's', 'q', 'p', 'n', 'k', 'x', 'a', 't', 'sa', 'st', 'fa', 'le', 'o', 'c', 'r',
    'e', 'g')
  if not row[1] then return false end
  row[18] = redis.call('GET', bkey(id))
  row[19] = id
  return row
end

-- the (queue, status) indexes serve queries (ids in lexical order) and statistics (ZCARD, O(1))
local function move_index(id, q, from, to)
  if from then redis.call('ZREM', P .. ':ix:' .. q .. ':' .. from, id) end
  if to then redis.call('ZADD', P .. ':ix:' .. q .. ':' .. to, '0', id) end
end

local function add_pending(id, q, p, sa, x)
  redis.call('ZADD', pending_key(q, p), sa, id)
  redis.call('ZADD', P .. ':pp:' .. q, p, p)
  if x then redis.call('ZADD', KEY_EXPIRY, x, id) end
end

local function remove_pending(id, q, p, x)
  local zk = pending_key(q, p)
  redis.call('ZREM', zk, id)
  if redis.call('EXISTS', zk) == 0 then redis.call('ZREM', P .. ':pp:' .. q, p) end
  if x then redis.call('ZREM', KEY_EXPIRY, id) end
end

local function release_key(id, k)
  if k and redis.call('HGET', KEY_ACTIVE, k) == id then redis.call('HDEL', KEY_ACTIVE, k) end
end

-- new work of a paused queue wakes nobody: no worker could claim it
local function wake_queue(q)
  if redis.call('HEXISTS', KEY_PAUSED, q) == 0 then redis.call('PUBLISH', C .. ':wake:' .. q, '') end
end

local function announce_finish(id, status) redis.call('PUBLISH', C .. ':done:' .. id, status) end

-- pending -> running (claim, claim_record). A counter that is not a number (a corrupted hash) counts as 0, so
-- that the claim still succeeds and the record's other fields decide whether it can run.
local function claim_one(id, q, p, x, owner, now, lease)
  local rk = rkey(id)
  remove_pending(id, q, p, x)
  local c = redis.call('HMGET', rk, 't', 'a')
  redis.call('HSET', rk, 's', 'running', 'o', owner, 'st', now, 'le', lease,
    't', string.format('%d', (tonumber(c[1]) or 0) + 1), 'a', string.format('%d', (tonumber(c[2]) or 0) + 1))
  redis.call('ZADD', KEY_RUNNING, lease, id)
  move_index(id, q, 'pending', 'running')
end

-- pending -> cancelled / expired
local function end_pending(id, status, now)
  local rk = rkey(id)
  local v = redis.call('HMGET', rk, 'q', 'p', 'k', 'x')
  remove_pending(id, v[1], v[2], v[4])
  redis.call('HSET', rk, 's', status, 'fa', now)
  redis.call('ZADD', KEY_FINISHED, now, id)
  move_index(id, v[1], 'pending', status)
  release_key(id, v[3])
  announce_finish(id, status)
end

local function delete_record(id)
  local rk = rkey(id)
  local v = redis.call('HMGET', rk, 's', 'q', 'n', 'k')
  if v[1] then
    move_index(id, v[2], v[1], nil)
    redis.call('ZREM', P .. ':it:' .. v[3], id)
    if v[4] then
      redis.call('ZREM', P .. ':kh:' .. v[4], id)
      release_key(id, v[4])
    end
    redis.call('DEL', rk, bkey(id))
  end
  redis.call('ZREM', KEY_FINISHED, id)
end

-- delete up to `limit` terminal records with finished_at < before
local function sweep_finished(before, limit)
  local ids = redis.call('ZRANGEBYSCORE', KEY_FINISHED, '-inf', '(' .. before, 'LIMIT', '0', limit)
  for _, id in ipairs(ids) do delete_record(id) end
  return #ids
end

-- byte-wise a < b (Lua's own string comparison follows the server's locale)
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- up to `want` due, unexpired pending entries of one (queue, priority) set, as {id, score, expires_at or false} in due order.
-- Expired records still waiting for `expire` are skipped, scanning at most SCAN_SLACK of them. An entry whose record
-- is no longer pending (an index left behind by a record whose hash was corrupted) is dropped from the set; an
-- expiry that is not a number counts as none (the record's decoding reports it).
local SCAN_SLACK = 1000
local function due_entries(zk, now, nnow, want)
  local found, offset = {}, 0
  while #found < want and offset < want + SCAN_SLACK do
    local ask = want - #found
    local batch = redis.call('ZRANGEBYSCORE', zk, '-inf', now, 'WITHSCORES', 'LIMIT', offset, ask)
    local got = #batch / 2
    for j = 1, #batch, 2 do
      local v = redis.call('HMGET', rkey(batch[j]), 's', 'x')
      if v[1] ~= 'pending' then
        redis.call('ZREM', zk, batch[j])
        offset = offset - 1
      else
        local nx = v[2] and tonumber(v[2])
        if not nx or nx > nnow then found[#found + 1] = {batch[j], tonumber(batch[j + 1]), v[2]} end
      end
    end
    if got < ask then break end
    offset = offset + got
  end
  return found
end

-- the server's clock in microseconds (TIME), for ages that no client clock may skew
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- a dedup key's holder in the per-queue cluster layout (P:ka): its queue, record id and when it was reserved
local function split_holder(value)
  local a = string.find(value, '\0', 1, true)
  local b = string.find(value, '\0', a + 1, true)
  return string.sub(value, 1, a - 1), string.sub(value, a + 1, b - 1), string.sub(value, b + 1)
end

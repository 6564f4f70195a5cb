-- One page of records, newest first (id descending). A: status, queue, task name (each "" = any, else
-- "=" .. value), limit, cursor ("" = first page, else the last id of the previous page).
-- Returns {next cursor or nil, rows...}.
local status, queue, task = opt_text(A[1]), opt_text(A[2]), opt_text(A[3])
local limit = tonumber(A[4])
local cursor = opt_text(A[5])
local max = '+'
if cursor then max = '(' .. cursor end
local STATUSES = {'pending', 'running', 'completed', 'failed', 'cancelled', 'expired'}
local SCAN_BUDGET = 20000

local sources = {}
local queues = {}
if queue then queues = {queue} else queues = redis.call('SMEMBERS', KEY_QUEUES) end
local statuses = STATUSES
if status then statuses = {status} end
for _, q in ipairs(queues) do
  for _, s in ipairs(statuses) do sources[#sources + 1] = P .. ':ix:' .. q .. ':' .. s end
end

local ids, next_cursor = {}, false
if not task then
  -- merge the newest limit+1 of every (queue, status) index
  for _, src in ipairs(sources) do
    for _, id in ipairs(redis.call('ZREVRANGEBYLEX', src, max, '-', 'LIMIT', '0', limit + 1)) do ids[#ids + 1] = id end
  end
  table.sort(ids, function(a, b) return bytes_less(b, a) end)
  if #ids > limit then
    for i = #ids, limit + 1, -1 do ids[i] = nil end
    next_cursor = ids[limit]
  end
else
  -- walk one index and filter on the other criteria: the task index, or the (queue, status) index if smaller
  local src = P .. ':it:' .. task
  local check_status, check_queue, check_task = status, queue, false
  if #sources == 1 and redis.call('ZCARD', sources[1]) < redis.call('ZCARD', src) then
    src, check_status, check_queue, check_task = sources[1], false, false, task
  end
  local scanned, exhausted, last = 0, false, false
  local batch_size = math.max(limit + 1, 100)
  while #ids <= limit and scanned < SCAN_BUDGET do
    local batch = redis.call('ZREVRANGEBYLEX', src, max, '-', 'LIMIT', '0', batch_size)
    for _, id in ipairs(batch) do
      scanned = scanned + 1
      last = id
      local v = redis.call('HMGET', rkey(id), 's', 'q', 'n')
      if v[1] and (not check_status or v[1] == check_status) and (not check_queue or v[2] == check_queue)
          and (not check_task or v[3] == check_task) then
        ids[#ids + 1] = id
        if #ids > limit then break end
      end
    end
    if #batch < batch_size then exhausted = true break end
    max = '(' .. last
  end
  if #ids > limit then
    ids[#ids] = nil
    next_cursor = ids[limit]
  elseif not exhausted and last then
    next_cursor = last
  end
end

local out = {next_cursor}
for _, id in ipairs(ids) do
  local row = read_record(id)
  if row then out[#out + 1] = row end
end
return reply(out)

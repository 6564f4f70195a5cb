-- Row of the active record holding key A[1], else of the most recently created record with that key.
local id = redis.call('HGET', KEY_ACTIVE, A[1])
if id then
  local row = read_record(id)
  if row then return reply(row) end
end
local latest = redis.call('ZREVRANGE', P .. ':kh:' .. A[1], '0', '0')
if latest[1] then return reply(read_record(latest[1])) end
return reply(false)

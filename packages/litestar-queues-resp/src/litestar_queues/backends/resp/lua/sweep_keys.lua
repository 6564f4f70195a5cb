-- Per-queue cluster layout, maintenance: the next step (about A[1] entries) of a walk over the dedup-key holders, from
-- the stored cursor on. Reply: {server clock, then key, queue, id, reserved at per holder}; the client releases the
-- holders whose records ended or never came (release_keys).
local cursor = redis.call('GET', P .. ':kacur') or '0'
local step = redis.call('HSCAN', KEY_ACTIVE, cursor, 'COUNT', A[1])
redis.call('SET', P .. ':kacur', step[1])
local out = {string.format('%d', server_now())}
local entries = step[2]
for i = 1, #entries, 2 do
  local hq, hid, at = split_holder(entries[i + 1])
  out[#out + 1] = entries[i]
  out[#out + 1] = hq
  out[#out + 1] = hid
  out[#out + 1] = at
end
return reply(out)

-- Rows of up to A[2] running records whose lease_expires_at <= A[1].
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEY_RUNNING, '-inf', A[1], 'LIMIT', '0', A[2])) do
  local row = read_record(id)
  if row then out[#out + 1] = row end
end
return reply(out)

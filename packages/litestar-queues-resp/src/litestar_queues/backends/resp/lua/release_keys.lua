-- Per-queue cluster layout, maintenance: release dedup keys whose holder is still the one the sweep saw. A: triples
-- key, holder id, reserved at. Reply: nothing.
for i = 1, #A, 3 do
  local holder = redis.call('HGET', KEY_ACTIVE, A[i])
  if holder then
    local _, hid, at = split_holder(holder)
    if hid == A[i + 1] and at == A[i + 2] then redis.call('HDEL', KEY_ACTIVE, A[i]) end
  end
end
return reply(false)

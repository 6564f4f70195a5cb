-- Store events whose ids are new. A: one array per event: id, position key, type, queue, task id ("" = None),
-- JSON. Index writes are grouped per key and sent once per key. Reply: nothing.
local members, order = {}, {}
for _, e in ipairs(A) do
  local id, position, kind, queue, task = e[1], e[2], e[3], e[4], e[5]
  if redis.call('HSETNX', KEY_EVENTS, id, kind .. '\0' .. queue .. '\0' .. task .. '\0' .. e[6]) == 1 then
    for _, key in ipairs(event_index_keys(kind, queue, task)) do
      local list = members[key]
      if not list then
        list = {}
        members[key] = list
        order[#order + 1] = key
      end
      list[#list + 1] = 0
      list[#list + 1] = position
    end
  end
end
for _, key in ipairs(order) do
  local list = members[key]
  for start = 1, #list, 2000 do
    redis.call('ZADD', key, unpack(list, start, math.min(start + 1999, #list)))
  end
end
return reply(false)

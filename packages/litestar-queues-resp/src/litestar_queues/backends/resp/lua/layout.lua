-- The prefix's cluster key layout, decided once and stored: 'queues' (one slot per queue, slots.py) for a new
-- prefix, 'prefix' (every key in the prefix's slot, the layout before) for one that holds data of that layout.
local key = P .. ':layout'
local layout = redis.call('GET', key)
if layout then return reply(layout) end
layout = 'queues'
for _, name in ipairs({':queues', ':w', ':evx', ':fin', ':run', ':exp', ':ka', ':paused'}) do
  if redis.call('EXISTS', P .. name) == 1 then
    layout = 'prefix'
    break
  end
end
redis.call('SET', key, layout)
return reply(layout)

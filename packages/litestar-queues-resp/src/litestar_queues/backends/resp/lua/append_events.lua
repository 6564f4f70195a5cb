-- Store events whose ids are new. A: four values per event, one after the other: id, position key, task id
-- ("" = None), stored value (see KEY_EVENTS). Each index gets one ZADD per call; scores are the text '0' (a Lua
-- number would be formatted anew for every member). Reply: nothing.
local every, tasks, task_order = {}, {}, {}
for i = 1, #A, 4 do
  if redis.call('HSETNX', KEY_EVENTS, A[i], A[i + 3]) == 1 then
    local position, task = A[i + 1], A[i + 2]
    every[#every + 1] = '0'
    every[#every + 1] = position
    if task ~= '' then
      local list = tasks[task]
      if not list then
        list = {}
        tasks[task] = list
        task_order[#task_order + 1] = task
      end
      list[#list + 1] = '0'
      list[#list + 1] = position
    end
  end
end
local function add(key, list)
  for start = 1, #list, 2000 do redis.call('ZADD', key, unpack(list, start, math.min(start + 1999, #list))) end
end
add(KEY_EVENT_ORDER, every)
for _, task in ipairs(task_order) do add(task_events_key(task), tasks[task]) end
return reply(false)

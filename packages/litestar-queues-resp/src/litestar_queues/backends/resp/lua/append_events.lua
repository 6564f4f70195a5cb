-- Store events whose ids are new, then progress under its fences (one round trip for the history writer's batch).
-- A[1]: three values per event, one after the other: position key (its id from the 33rd byte on), task id ("" =
-- None), stored value (see KEY_EVENTS); A[2]: progress updates as save_progress takes them. Each index gets one
-- ZADD per call; scores are the text '0' (a Lua number would be formatted anew for every member). Reply: nothing.
local E = A[1]
local every, tasks, task_order = {}, {}, {}
for i = 1, #E, 3 do
  local position = E[i]
  if redis.call('HSETNX', KEY_EVENTS, string.sub(position, 33), E[i + 2]) == 1 then
    local task = E[i + 1]
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
save_progress(A[2])
return reply(false)

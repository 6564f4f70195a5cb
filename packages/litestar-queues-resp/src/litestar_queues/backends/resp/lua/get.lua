-- Rows of the records A[1..] (nil where missing).
local out = {}
for i = 1, #A do out[i] = read_record(A[i]) end
return reply(out)

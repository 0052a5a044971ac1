-- depths (read only): ARGV route names (`P route-names`) → {route, pending,
-- running, ...} for every route with unfinished jobs, all counted at this one instant.
-- Pending is the size of the route's queue; running is counted from the `P running`
-- index and each job's status, which finds routes the SCAN could not (nothing pending)
-- and, unlike the per-route running sets, never counts ids an older replica left behind.
local pending, running, routes = {}, {}, {}
local function note(route)
  if not pending[route] then
    pending[route], running[route] = 0, 0
    routes[#routes + 1] = route
  end
end
for i = 2, #ARGV do
  local queue = pending_key(ARGV[i])
  -- Only a zset is a queue: a key of another store whose prefix happens to extend this
  -- one (`P pending:...`) may match the SCAN too, and would make ZCARD fail.
  if redis.call('TYPE', queue).ok == 'zset' then
    local n = redis.call('ZCARD', queue)
    if n > 0 then
      note(ARGV[i])
      pending[ARGV[i]] = n
    end
  end
end
for _, id in ipairs(redis.call('ZRANGE', RUNNING, 0, -1)) do
  local f = redis.call('HMGET', job_key(id), 'status', 'route')
  if f[1] == 'running' and f[2] then
    note(f[2])
    running[f[2]] = running[f[2]] + 1
  end
end
local reply = {}
for _, route in ipairs(routes) do
  reply[#reply + 1] = route
  reply[#reply + 1] = pending[route]
  reply[#reply + 1] = running[route]
end
return reply

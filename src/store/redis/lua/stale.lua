-- stale (read only): ARGV now, ignore ('1'/'0') → the distinct routes of the running
-- jobs `recover` would handle now, for the caller to decide on.
local seen, routes = {}, {}
for _, id in ipairs(stale_ids(ARGV[2], ARGV[3])) do
  local route = redis.call('HGET', job_key(id), 'route')
  if route and not seen[route] then
    seen[route] = true
    routes[#routes + 1] = route
  end
end
return routes

-- recover: ARGV now, ignore ('1'/'0'), expires_at, then route, 'retry' | 'fail', ...
-- → how many jobs were handled. The stale jobs are selected again here: one that was
-- renewed, finished or canceled since `stale` ran is left alone, and one on a route
-- without a decision (it turned stale since) is left to the next run.
local now, expires_at = ARGV[2], ARGV[4]
local decisions = {}
for i = 5, #ARGV, 2 do decisions[ARGV[i]] = ARGV[i + 1] end
local handled = 0
for _, id in ipairs(stale_ids(now, ARGV[3])) do
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'status', 'route', 'created_at')
  if f[1] ~= 'running' then
    redis.call('ZREM', RUNNING, id)
    if f[2] then redis.call('SREM', running_key(f[2]), id) end
  elseif decisions[f[2]] == 'retry' then
    redis.call('ZREM', RUNNING, id)
    redis.call('SREM', running_key(f[2]), id)
    redis.call('HDEL', key, 'lease_until')
    redis.call('HSET', key, 'status', 'pending', 'updated_at', now)
    redis.call('ZADD', pending_key(f[2]), f[3], id)
    handled = handled + 1
  elseif decisions[f[2]] == 'fail' then
    finish(id, 'failed', now, expires_at, {'error_code', 'interrupted',
      'error_message', 'the gateway stopped while this job was running'})
    handled = handled + 1
  end
end
return handled

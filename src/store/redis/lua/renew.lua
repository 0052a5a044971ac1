-- renew: ARGV id, lease_until → 1 | 0 (not running)
local key = job_key(ARGV[2])
if redis.call('HGET', key, 'status') ~= 'running' then return 0 end
redis.call('HSET', key, 'lease_until', ARGV[3])
redis.call('ZADD', RUNNING, ARGV[3], ARGV[2])
return 1

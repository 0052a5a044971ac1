-- complete: ARGV id, status, now, expires_at, then response / error fields as field,
-- value, ... → 1 | 0 (not running: canceled or recovered meanwhile; nothing changes)
if redis.call('HGET', job_key(ARGV[2]), 'status') ~= 'running' then return 0 end
finish(ARGV[2], ARGV[3], ARGV[4], ARGV[5], {unpack(ARGV, 6)})
return 1

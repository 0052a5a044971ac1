-- note_attempt: ARGV id, 'failed', code, message | id, 'next' → 1 | 0 (not running)
local key = job_key(ARGV[2])
if redis.call('HGET', key, 'status') ~= 'running' then return 0 end
if ARGV[3] == 'next' then
  redis.call('HINCRBY', key, 'attempts', 1)
else
  redis.call('HSET', key, 'error_code', ARGV[4], 'error_message', ARGV[5])
end
return 1

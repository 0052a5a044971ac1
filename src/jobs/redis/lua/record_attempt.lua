-- record_attempt: ARGV id, state, next_at ('' = none), status ('' = none),
-- has_error ('1'/'0'), error → 1 | 0 (no such job or no callback: nothing to record)
local id = ARGV[2]
local key = job_key(id)
if not redis.call('HGET', key, 'cb_url') then return 0 end
unindex_delivery(id)
redis.call('HDEL', key, 'cb_lease_until', 'cb_next_at', 'cb_last_status', 'cb_last_error')
local attempts = redis.call('HINCRBY', key, 'cb_attempts', 1)
redis.call('HSET', key, 'cb_state', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', key, 'cb_next_at', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', key, 'cb_last_status', ARGV[5]) end
if ARGV[6] == '1' then redis.call('HSET', key, 'cb_last_error', ARGV[7]) end
if ARGV[3] == 'pending' and ARGV[4] ~= '' then index_delivery(id, attempts, ARGV[4]) end
return 1

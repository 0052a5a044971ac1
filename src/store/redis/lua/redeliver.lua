-- redeliver: ARGV tenant, id, now → {'scheduled', job...} | {'unfinished', job...} |
-- {'nocallback', job...} | {'expired'} | {'missing'}
local id, now = ARGV[3], ARGV[4]
local state, status = lookup(ARGV[2], id, now)
if state ~= 'found' then return {state} end
if status == 'pending' or status == 'running' then return with_job('unfinished', id) end
local key = job_key(id)
if not redis.call('HGET', key, 'cb_url') then return with_job('nocallback', id) end
-- Callbacks only: an admission is settled or released once.
local d = DELIVERIES.callback
unindex_delivery(d, id)
redis.call('HDEL', key, 'cb_lease_until', 'cb_last_status', 'cb_last_error')
redis.call('HSET', key, 'cb_state', 'pending', 'cb_attempts', '0', 'cb_next_at', now)
index_delivery(d, id, 0, now)
return with_job('scheduled', id)

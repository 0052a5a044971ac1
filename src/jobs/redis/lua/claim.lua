-- claim: ARGV route, lease_until, now → {'claimed', job...} | {'none'}
-- The pending index is scored by created_at and Redis orders equal scores by member, so
-- its first entry is the oldest job with the id as tie-break (as in the other stores).
local queue = pending_key(ARGV[2])
while true do
  local id = redis.call('ZRANGE', queue, 0, 0)[1]
  if not id then return {'none'} end
  redis.call('ZREM', queue, id)
  local key = job_key(id)
  if redis.call('HGET', key, 'status') == 'pending' then
    redis.call('HSET', key, 'status', 'running', 'lease_until', ARGV[3], 'updated_at', ARGV[4])
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('ZADD', RUNNING, ARGV[3], id)
    return with_job('claimed', id)
  end
  -- An index entry without a pending job behind it cannot come from these scripts; it is
  -- dropped rather than handed out.
end

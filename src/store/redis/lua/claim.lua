-- claim: ARGV route, max_running, lease_until, now → {'claimed', job...} | {'none'}
-- Nothing is claimed while `max_running` jobs of the route are running: the count is the
-- route's running set, read in this script, so the limit holds across replicas.
local route, max_running = ARGV[2], tonumber(ARGV[3])
local running = running_key(route)
if redis.call('SCARD', running) >= max_running then
  -- At the limit, drop members that are not running any more before refusing: a replica
  -- of an older version finishes jobs without knowing this set, and its leftovers would
  -- otherwise hold the route's slots for good. Only done at the limit, so it costs at
  -- most one pass over `max_running` ids, and only when a claim would be refused.
  for _, id in ipairs(redis.call('SMEMBERS', running)) do
    if redis.call('HGET', job_key(id), 'status') ~= 'running' then
      redis.call('SREM', running, id)
    end
  end
  if redis.call('SCARD', running) >= max_running then return {'none'} end
end
-- The pending index is scored by created_at and Redis orders equal scores by member, so
-- its first entry is the oldest job with the id as tie-break (as in the other stores).
local queue = pending_key(route)
while true do
  local id = redis.call('ZRANGE', queue, 0, 0)[1]
  if not id then return {'none'} end
  redis.call('ZREM', queue, id)
  local key = job_key(id)
  if redis.call('HGET', key, 'status') == 'pending' then
    redis.call('HSET', key, 'status', 'running', 'lease_until', ARGV[4], 'updated_at', ARGV[5])
    redis.call('HINCRBY', key, 'attempts', 1)
    -- A waiting `started` event is due now; only the first claim finds it waiting.
    local st = DELIVERIES.started
    local g = redis.call('HMGET', key, st.field .. 'state', st.field .. 'attempts')
    if g[1] == 'waiting' then
      redis.call('HSET', key, st.field .. 'state', 'pending', st.field .. 'next_at', ARGV[5])
      index_delivery(st, id, g[2], ARGV[5])
    end
    redis.call('ZADD', RUNNING, ARGV[4], id)
    redis.call('SADD', running, id)
    return with_job('claimed', id)
  end
  -- An index entry without a pending job behind it cannot come from these scripts; it is
  -- dropped rather than handed out.
end

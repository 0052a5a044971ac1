-- create: ARGV id, tenant, route, keyed ('1'/'0'), key, fingerprint, max_queued, now,
-- then the new job's hash as field, value, ...
-- → {'new'} | {'existing', job...} | {'conflict'} | {'full'} | {'duplicate'}
local id, tenant, route, keyed, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6]
local fingerprint, max_queued, now = ARGV[7], tonumber(ARGV[8]), ARGV[9]

-- The key check comes first: a retry of an accepted job is answered with that job even
-- when the tenant's queue is full now.
local idem
if keyed then
  idem = idem_key(tenant, route, key)
  local existing = redis.call('GET', idem)
  if existing and redis.call('EXISTS', job_key(existing)) == 1 then
    if redis.call('HGET', job_key(existing), 'fingerprint') == fingerprint then
      return with_job('existing', existing)
    end
    return {'conflict'}
  end
end
local open = tonumber(redis.call('GET', open_key(tenant)) or '0')
if open >= max_queued then return {'full'} end
if redis.call('EXISTS', job_key(id)) == 1 then return {'duplicate'} end

redis.call('HSET', job_key(id), unpack(ARGV, 10))
if keyed then redis.call('SET', idem, id) end
redis.call('ZADD', pending_key(route), now, id)
-- Every route that ever queued a job, so `depths` finds the queues without a SCAN.
redis.call('SADD', P .. 'route-names', route)
-- The tenant's list (list.lua), so listing never looks beyond the tenant's own jobs.
redis.call('ZADD', tenant_jobs_key(tenant), now, id)
redis.call('INCR', open_key(tenant))
return {'new'}

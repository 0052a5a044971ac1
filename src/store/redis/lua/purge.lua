-- purge: ARGV tenant, id, now → {'done'} | {'unfinished', status} | {'notice', next_at}
-- | {'expired'} | {'missing'}
-- A finished job of the tenant leaves at once with everything of it — its hash (and so its
-- deliveries' fields), their due entries, its expiry and tenant-list entries, its
-- idempotency key — and leaves no tombstone, so its id then reads as missing. Refused while
-- the job is unfinished, or while its admission notice has not been delivered (`next_at`
-- is when the next attempt is due, '' if unknown).
local id, now = ARGV[3], ARGV[4]
local state, status = lookup(ARGV[2], id, now)
if state ~= 'found' then return {state} end
if status == 'pending' or status == 'running' then return {'unfinished', status} end
local key = job_key(id)
local f = redis.call('HMGET', key, 'tenant', 'route', 'idem_key', 'adm_state', 'adm_next_at')
if f[4] == 'waiting' or f[4] == 'pending' then return {'notice', f[5] or ''} end
redis.call('DEL', key)
redis.call('ZREM', EXPIRY, id)
redis.call('ZREM', tenant_jobs_key(f[1]), id)
for _, d in ipairs(DELIVERY_KINDS) do unindex_delivery(d, id) end
if f[3] then
  local idem = idem_key(f[1], f[2], f[3])
  if redis.call('GET', idem) == id then redis.call('DEL', idem) end
end
return {'done'}

-- sweep: ARGV now, linger (tombstone life after expiry), batch, ttl cap → jobs deleted
-- Up to `batch` jobs whose expires_at <= now leave in (expires_at, id) order, taking their
-- tenant-list entry, idempotency key and deliveries (every kind, with their due entries)
-- with them and leaving a tombstone (its tenant) until expires_at + linger. The tombstone
-- also gets a Redis TTL for that span, so it goes even if no sweeper runs; the `tombs`
-- index is what purges it on the caller's clock.
local now, linger, batch, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local deleted = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', ARGV[2], 'LIMIT', 0, batch)) do
  redis.call('ZREM', EXPIRY, id)
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'tenant', 'route', 'idem_key', 'expires_at')
  if f[1] then
    redis.call('DEL', key)
    redis.call('ZREM', tenant_jobs_key(f[1]), id)
    for _, d in ipairs(DELIVERY_KINDS) do unindex_delivery(d, id) end
    if f[3] then
      local idem = idem_key(f[1], f[2], f[3])
      if redis.call('GET', idem) == id then redis.call('DEL', idem) end
    end
    local purge_at = tonumber(f[4]) + linger
    if purge_at > now then
      redis.call('SET', tomb_key(id), f[1], 'PX', int(math.min(purge_at - now, cap)))
      redis.call('ZADD', TOMBS, int(purge_at), id)
    end
    deleted = deleted + 1
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', TOMBS, '-inf', ARGV[2], 'LIMIT', 0, batch)) do
  redis.call('DEL', tomb_key(id))
  redis.call('ZREM', TOMBS, id)
end
return deleted

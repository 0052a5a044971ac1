-- record_attempt: ARGV id, kind, state, next_at ('' = none), status ('' = none),
-- has_error ('1'/'0'), error → 1 | 0 (no such job, or none of that kind: nothing to
-- record). Only the kind's fields and due indexes change.
local id, d = ARGV[2], delivery_kind(ARGV[3])
local key = job_key(id)
local function field(name) return d.field .. name end
if not redis.call('HGET', key, field('url')) then return 0 end
unindex_delivery(d, id)
redis.call('HDEL', key, field('lease_until'), field('next_at'), field('last_status'),
  field('last_error'))
local attempts = redis.call('HINCRBY', key, field('attempts'), 1)
redis.call('HSET', key, field('state'), ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', key, field('next_at'), ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', key, field('last_status'), ARGV[6]) end
if ARGV[7] == '1' then redis.call('HSET', key, field('last_error'), ARGV[8]) end
if ARGV[4] == 'pending' and ARGV[5] ~= '' then index_delivery(d, id, attempts, ARGV[5]) end
return 1

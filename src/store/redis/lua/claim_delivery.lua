-- claim_delivery: ARGV kind, now, first_delay, first_cutoff (now - first_delay),
-- lease_until → {'claimed', job...} | {'none'}
-- Only the kind's own due indexes are read, each in (next_at, id) order; leased deliveries
-- are still pending and so still indexed, and are stepped over (at most the attempts of
-- that kind in flight).
local d = delivery_kind(ARGV[2])
local now, delay = tonumber(ARGV[3]), tonumber(ARGV[4])
local state, lease = d.field .. 'state', d.field .. 'lease_until'
local PAGE = 64

local function earliest(index, max)
  local offset = 0
  while true do
    local page = redis.call('ZRANGEBYSCORE', index, '-inf', max, 'WITHSCORES', 'LIMIT', offset, PAGE)
    for i = 1, #page, 2 do
      local f = redis.call('HMGET', job_key(page[i]), state, lease)
      if f[1] == 'pending' and (not f[2] or tonumber(f[2]) < now) then
        return page[i], tonumber(page[i + 1])
      end
    end
    if #page < 2 * PAGE then return nil end
    offset = offset + PAGE
  end
end

local first, first_at = earliest(d.first, ARGV[5])
local retry, retry_at = earliest(d.retry, ARGV[3])
local id = first or retry
if first and retry then
  first_at = first_at + delay
  if retry_at < first_at or (retry_at == first_at and retry < first) then id = retry end
end
if not id then return {'none'} end
redis.call('HSET', job_key(id), lease, ARGV[6])
return with_job('claimed', id)

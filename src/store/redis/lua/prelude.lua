-- Shared by every script of the Redis job store: prepended to each one (see scripts.rs).
-- ARGV[1] is always the key prefix; keys are derived here so that the layout is written
-- down once (redis.rs lists it). Times arrive as decimal strings in ARGV and are stored
-- as given; they are only turned into numbers to be compared.
local P = ARGV[1]
local RUNNING, EXPIRY, TOMBS = P .. 'running', P .. 'expiry', P .. 'tombs'

-- A job's deliveries, per kind (the `DeliveryKind` spellings): the prefix of their fields
-- in the job hash (`cb_state`, `adm_state`, ...; codec.rs lists them) and their own two
-- due indexes, so a claim for one kind never reads the other's backlog. The callback's
-- keys keep the names they had before admissions existed: a store written by an older
-- gateway keeps its due callbacks.
local DELIVERIES = {
  callback = {field = 'cb_', first = P .. 'due:first', retry = P .. 'due:retry'},
  admission = {field = 'adm_', first = P .. 'due:admission:first',
    retry = P .. 'due:admission:retry'},
  -- The `started` event: due when the job is claimed (claim.lua), never by `finish`.
  started = {field = 'st_', first = P .. 'due:started:first',
    retry = P .. 'due:started:retry', on_claim = true},
}
-- The same in a fixed order, for loops (`pairs` has none).
local DELIVERY_KINDS = {DELIVERIES.callback, DELIVERIES.admission, DELIVERIES.started}

-- The delivery kind an argument names; any other spelling means the script and the Rust
-- code disagree, which must fail loudly rather than touch nothing.
local function delivery_kind(name)
  local d = DELIVERIES[name]
  if not d then error('unknown delivery kind ' .. tostring(name)) end
  return d
end

-- A computed time as decimal digits: Lua numbers are doubles, and how Redis would print
-- one on its own varies between versions (an exponent would not parse as a PX value).
local function int(n) return string.format('%.0f', n) end

local function job_key(id) return P .. 'job:' .. id end
local function tomb_key(id) return P .. 'tomb:' .. id end
local function pending_key(route) return P .. 'pending:' .. route end
-- The ids of a route's running jobs: claim's limit is this set's size. Kept by claim and
-- by every step out of running (finish, recover's retry); an absent set counts as none.
local function running_key(route) return P .. 'running:' .. route end
local function open_key(tenant) return P .. 'tenant:' .. tenant .. ':open' end
-- Every job of a tenant, scored by created_at: the list order read backwards (equal scores
-- sort by member bytes, i.e. by id). Kept by create, sweep and purge; list reads it.
local function tenant_jobs_key(tenant) return P .. 'tenant:' .. tenant .. ':jobs' end
-- Lengths first: tenant "a:b" + route "c" and tenant "a" + route "b:c" must differ.
local function idem_key(tenant, route, key)
  return P .. 'idem:' .. #tenant .. ':' .. tenant .. ':' .. #route .. ':' .. route .. ':' .. key
end

-- `tag` followed by job `id`'s hash as field, value, field, value, ...
local function with_job(tag, id)
  local reply = redis.call('HGETALL', job_key(id))
  table.insert(reply, 1, tag)
  return reply
end

-- What `tenant` may see of job `id` at `now`: 'found' (and the status), 'expired' (past
-- retention, or swept and tombstoned for this tenant) or 'missing'.
local function lookup(tenant, id, now)
  local f = redis.call('HMGET', job_key(id), 'tenant', 'expires_at', 'status')
  if not f[1] then
    if redis.call('GET', tomb_key(id)) == tenant then return 'expired' end
    return 'missing'
  end
  if f[1] ~= tenant then return 'missing' end
  if f[2] and tonumber(f[2]) <= tonumber(now) then return 'expired' end
  return 'found', f[3]
end

-- A pending delivery of kind `d` is due-indexed by `next_at` in that kind's indexes:
-- never attempted and retried ones apart, because a first attempt waits an extra delay
-- that is only known at claim time.
local function index_delivery(d, id, attempts, at)
  if tonumber(attempts) == 0 then
    redis.call('ZADD', d.first, at, id)
  else
    redis.call('ZADD', d.retry, at, id)
  end
end

local function unindex_delivery(d, id)
  redis.call('ZREM', d.first, id)
  redis.call('ZREM', d.retry, id)
end

-- One fewer unfinished job for `tenant`; the counter goes at zero.
local function decrement(tenant)
  local key = open_key(tenant)
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end

-- Moves unfinished job `id` to terminal `status` (`extra`: response / error fields):
-- out of the pending or running indexes, into the expiry index, one fewer unfinished job
-- for its tenant, its waiting deliveries (every kind but `started`) due now, and the id published on
-- `P finished` — all in the caller's script.
local function finish(id, status, now, expires_at, extra)
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'status', 'tenant', 'route')
  if f[1] == 'pending' then
    redis.call('ZREM', pending_key(f[3]), id)
  else
    redis.call('ZREM', RUNNING, id)
    redis.call('SREM', running_key(f[3]), id)
  end
  redis.call('HDEL', key, 'lease_until', 'resp_status', 'resp_headers', 'resp_body',
    'error_code', 'error_message')
  redis.call('HSET', key, 'status', status, 'updated_at', now, 'expires_at', expires_at,
    unpack(extra))
  redis.call('ZADD', EXPIRY, expires_at, id)
  decrement(f[2])
  for _, d in ipairs(DELIVERY_KINDS) do
    local state = d.field .. 'state'
    local g = redis.call('HMGET', key, state, d.field .. 'attempts')
    if g[1] == 'waiting' and not d.on_claim then
      redis.call('HSET', key, state, 'pending', d.field .. 'next_at', now)
      index_delivery(d, id, g[2], now)
    end
  end
  -- Waiters on other replicas (feed.rs); lost messages are covered by their polling.
  redis.call('PUBLISH', P .. 'finished', id)
end

-- Running jobs whose lease ended before `now` (all of them when `ignore` is '1'): the
-- running index is scored by lease, so this is one range read.
local function stale_ids(now, ignore)
  local max = '(' .. now
  if ignore == '1' then max = '+inf' end
  return redis.call('ZRANGEBYSCORE', RUNNING, '-inf', max)
end

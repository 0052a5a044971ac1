-- list: ARGV tenant, status ('' = any), routed ('1'/'0'), route, limit, after ('1'/'0'),
-- after_created_at, after_id, now, scan limit
-- → {next_created_at, next_id, job...} where each job is a table of its summary fields
-- (field, value, ...; no header lists or bodies) and next is '' '' at the end of the list.
-- Walks the tenant's list (`tenant:{t}:jobs`, newest first) from just after the cursor,
-- like `listing::walk` in Rust: at most `scan` entries are looked at; a page ends after
-- `limit` matches when one more match follows, or at the scan limit, or at the end.
local tenant, status, routed, route = ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local limit, after, after_at, after_id = tonumber(ARGV[6]), ARGV[7] == '1', ARGV[8], ARGV[9]
local now, scan = tonumber(ARGV[10]), tonumber(ARGV[11])
local key = tenant_jobs_key(tenant)

-- Byte order, as the set sorts members: Lua's own `<` on strings follows the server's
-- collation locale.
local function bytes_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The rank (in descending order) where the page starts: right after the cursor.
local start = 0
if after then
  local score = redis.call('ZSCORE', key, after_id)
  if score and tonumber(score) == tonumber(after_at) then
    start = redis.call('ZREVRANK', key, after_id) + 1
  else
    -- The cursor's job is gone (swept, purged): count what sorts before its position —
    -- every newer job, and the ones as old with a larger id.
    start = redis.call('ZCOUNT', key, '(' .. after_at, '+inf')
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, after_at, after_at)) do
      if bytes_before(after_id, m) then start = start + 1 end
    end
  end
end

local chosen, gone = {}, {}
local seen, last_at, last_id = 0, '', ''
local next_at, next_id = '', ''
local step = 100
local pos, walking = start, true
while walking do
  local members = redis.call('ZREVRANGE', key, pos, pos + step - 1, 'WITHSCORES')
  if #members == 0 then break end
  for i = 1, #members, 2 do
    local id, at = members[i], int(tonumber(members[i + 1]))
    if seen == scan then
      -- Looked at enough, and there is more: continue after the last one seen.
      next_at, next_id, walking = last_at, last_id, false
      break
    end
    seen = seen + 1
    local f = redis.call('HMGET', job_key(id), 'status', 'route', 'expires_at')
    if not f[1] then
      -- Swept by a gateway that did not keep this list yet: drop the entry below.
      gone[#gone + 1] = id
    elseif (status == '' or f[1] == status) and (not routed or f[2] == route)
        and (not f[3] or tonumber(f[3]) > now) then
      if #chosen == limit then
        -- A job for the next page exists: this page ends at its own last job.
        next_at, next_id, walking = chosen[#chosen][2], chosen[#chosen][1], false
        break
      end
      chosen[#chosen + 1] = {id, at}
    end
    last_at, last_id = at, id
  end
  pos = pos + step
end
-- Only now, with the walk over: removing while walking would shift the ranks.
for _, id in ipairs(gone) do redis.call('ZREM', key, id) end

local HEAVY = {req_headers = true, req_body = true, resp_headers = true, resp_body = true}
local reply = {next_at, next_id}
for _, c in ipairs(chosen) do
  local job = job_key(c[1])
  local names = {}
  for _, name in ipairs(redis.call('HKEYS', job)) do
    if not HEAVY[name] then names[#names + 1] = name end
  end
  local values = redis.call('HMGET', job, unpack(names))
  local fields = {}
  for i, name in ipairs(names) do
    fields[#fields + 1] = name
    fields[#fields + 1] = values[i]
  end
  reply[#reply + 1] = fields
end
return reply

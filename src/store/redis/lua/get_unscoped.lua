-- get_unscoped: ARGV id, now → {'found', job...} | {'expired'} | {'missing'}
-- For signed result URLs: the signature names the job, so its tenant is not asked; any
-- tombstone (whoever's) reads as expired. Job and tombstone are read at one instant.
local id, now = ARGV[2], ARGV[3]
local f = redis.call('HMGET', job_key(id), 'tenant', 'expires_at')
if not f[1] then
  if redis.call('EXISTS', tomb_key(id)) == 1 then return {'expired'} end
  return {'missing'}
end
if f[2] and tonumber(f[2]) <= tonumber(now) then return {'expired'} end
return with_job('found', id)

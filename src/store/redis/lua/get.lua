-- get: ARGV tenant, id, now → {'found', job...} | {'expired'} | {'missing'}
local state = lookup(ARGV[2], ARGV[3], ARGV[4])
if state == 'found' then return with_job('found', ARGV[3]) end
return {state}

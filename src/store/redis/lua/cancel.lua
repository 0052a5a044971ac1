-- cancel: ARGV tenant, id, now, expires_at, error_code, error_message
-- → {'done', job...} | {'terminal', job...} | {'expired'} | {'missing'}
local id, now = ARGV[3], ARGV[4]
local state, status = lookup(ARGV[2], id, now)
if state ~= 'found' then return {state} end
if status ~= 'pending' and status ~= 'running' then return with_job('terminal', id) end
finish(id, 'canceled', now, ARGV[5],
  {'error_code', ARGV[6], 'error_message', ARGV[7]})
return with_job('done', id)

-- Begin one turn in one round trip: claim the message, take the conversation lock, load the state.
-- KEYS: 1 message claim, 2 lock, 3 session, 4 handoff
-- ARGV: 1 token (the claim holds "pending:<token>", the lock "<token>"), 2 lease ms
-- Returns {"done"} (committed before), {"pending"} (another attempt holds the claim), {"locked"} (the
-- claim is ours, another turn of this conversation holds the lock: call again), or
-- {"ok", session fields, handoff fields}. Calling again with the same token is safe (a retry).
local claim = 'pending:' .. ARGV[1]
local held = redis.call('GET', KEYS[1])
if held == false then
  redis.call('SET', KEYS[1], claim, 'PX', ARGV[2])
elseif held == claim then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif string.sub(held, 1, 4) == 'done' then
  return {'done'}
else
  return {'pending'}
end
local lock = redis.call('GET', KEYS[2])
if lock ~= false and lock ~= ARGV[1] then return {'locked'} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'ok', redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4])}

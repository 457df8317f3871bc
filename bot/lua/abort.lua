-- End a turn that did not commit: give the message back (a retry is handled, not swallowed) and
-- release the lock, each only if still ours.
-- KEYS: 1 message claim, 2 lock. ARGV: 1 token
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1

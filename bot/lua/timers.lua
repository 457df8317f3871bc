-- Claim due timers with a lease: each due member moves from `timers` to `timers:leased`.
-- Leases that expired (a process died while handling) are returned to `timers` first.
-- KEYS: 1 timers, 2 leased. ARGV: 1 now, 2 lease seconds, 3 limit
local now = tonumber(ARGV[1])
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZADD', KEYS[1], now, m)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), m)
end
return due

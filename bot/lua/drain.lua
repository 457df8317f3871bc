-- Hand queued chats to free agents (each with how to greet the buyer, see assign), then tell waiting buyers whose position improved materially.
-- ARGV: 1 routing json {p, now, timeout, max_reassignments, members = {group = {{u, cap}, ...}}}
local ctx = cjson.decode(ARGV[1])
REPORT.k, REPORT.ttl = ctx.rk, ctx.rttl
local assigned, moved = {}, {}
for group, members in pairs(ctx.members) do
  for _, pair in ipairs(drain(ctx.p, group, members, ctx.now, ctx.timeout, ctx.max_reassignments)) do
    assigned[#assigned + 1] = {pair[1], pair[2], group, pair[3]}
  end
  local waiting = redis.call('ZRANGE', ctx.p .. 'queue:' .. group, 0, 199)
  for i, cid in ipairs(waiting) do
    local h = hkey(ctx.p, cid)
    local told = tonumber(redis.call('HGET', h, 'told_position') or '0')
    if told == 0 or i <= told - 2 or (i == 1 and told > 1) then
      redis.call('HSET', h, 'told_position', i)
      moved[#moved + 1] = {cid, i, group}
    end
  end
end
local out = {assigned = assigned, moved = moved}
if #REPORT.samples > 0 then out.samples = REPORT.samples end
return cjson.encode(out)

-- Commit one turn atomically: session, transcript, dedupe mark, handoff effects, fan-out event.
-- KEYS: 1 session, 2 transcript, 3 message claim, 4 lock, 5 handoff, 6 outbox, 7 scratch key beside the transcript
-- ARGV: 1 lock token, 2 claim value ("pending:<lock token>"), 3 session ttl, 4 dedupe ttl, 5 transcript cap, 6 session json,
--       7 entries json, 8 event channel, 9 event json, 10 effects json, 11 routing json,
--       12 outbox json: {channel, conversation, [message json ...]} or "",
--       13 report json: {k, ck, ttl, channel, hour, new, buyer, gap, gk, gap_ttl, now} or ""
-- The lock is released at the end, so a turn is two round trips: begin.lua and this script.
local claim = redis.call('GET', KEYS[3])
if claim == 'done:' .. ARGV[1] then return '[]' end  -- a retry of this very commit: it is written
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return redis.error_reply('LOST_LOCK') end
if claim ~= ARGV[2] then return redis.error_reply('LOST_CLAIM') end

local effects = cjson.decode(ARGV[10])
local ctx = cjson.decode(ARGV[11])
local rep = {}
if ARGV[13] and ARGV[13] ~= '' then rep = cjson.decode(ARGV[13]) end
REPORT.k, REPORT.ttl = rep.k or ctx.rk, rep.ttl or ctx.rttl
local ch = dim('c', rep.channel)
local h = KEYS[5]
local cur = {}
local flat = redis.call('HGETALL', h)
for i = 1, #flat, 2 do cur[flat[i]] = flat[i + 1] end

-- 1. Preconditions: an agent acts only on a chat it owns right now (a late reply after a
--    reassignment is refused here, atomically). Nothing has been written yet.
for _, e in ipairs(effects) do
  if (e.kind == 'first_reply' or e.kind == 'close' or e.kind == 'transfer') and e.agent then
    if cur.state ~= 'WITH_AGENT' or cur.agent ~= e.agent then return redis.error_reply('NOT_ASSIGNED') end
  end
  if e.kind == 'pick' then
    -- taking a waiting buyer from the queue: the same checks as the automatic assignment, in the
    -- same atomic step, so a chat never gets two owners
    if cur.state ~= 'QUEUED' then return redis.error_reply('NOT_QUEUED') end
    local member = false
    for _, m in ipairs(ctx.members[cur.group] or {}) do if m[1] == e.agent then member = true end end
    if not member then return redis.error_reply('NOT_QUEUED') end
    -- an agent set to "away" gets no chats automatically but may still take one on purpose
    if redis.call('ZCOUNT', ctx.p .. 'presence:' .. e.agent, ctx.now, '+inf') == 0 then return redis.error_reply('TARGET_OFFLINE') end
    local cap = tonumber((ctx.capacity or {})[e.agent] or '0')
    if redis.call('SCARD', chats_key(ctx.p, e.agent)) >= cap then return redis.error_reply('TARGET_FULL') end
  end
  if e.kind == 'transfer' and e.target_agent then
    if e.target_agent == cur.agent then return redis.error_reply('SAME_AGENT') end
    if not is_online(ctx.p, e.target_agent, ctx.now) then return redis.error_reply('TARGET_OFFLINE') end
    local cap = tonumber((ctx.capacity or {})[e.target_agent] or '0')
    if e.reason ~= 'take_over' and redis.call('SCARD', chats_key(ctx.p, e.target_agent)) >= cap then return redis.error_reply('TARGET_FULL') end
  end
end

-- 2. Session and transcript.
local session = cjson.decode(ARGV[6])
redis.call('DEL', KEYS[1])
local fields = {}
for k, v in pairs(session) do fields[#fields + 1] = k; fields[#fields + 1] = v end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local entries = cjson.decode(ARGV[7])
local fresh = #entries > 0 and redis.call('EXISTS', KEYS[2]) == 0
for _, e in ipairs(entries) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'id', e[1], 'from', e[2], 'text', e[3], 'ts', e[4], 'agent', e[5], 'buttons', e[6], 'image', e[7])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
if fresh then
  -- A new stream's first node reserves 4 KB (Redis pre-allocates it for the XADDs to come); a copy is
  -- sized exactly, and later entries grow it step by step. Most conversations stay short, so this is
  -- most of their memory. Entry ids are kept.
  redis.call('COPY', KEYS[2], KEYS[7], 'REPLACE')
  redis.call('RENAME', KEYS[7], KEYS[2])
end
redis.call('SET', KEYS[3], 'done:' .. ARGV[1], 'EX', ARGV[4])
-- Messages for API channels that the submitting request does not carry (agent replies, notices):
-- committed to the outbox together with the transcript, delivered with retries afterwards.
if ARGV[12] ~= '' then
  local out = cjson.decode(ARGV[12])
  for _, m in ipairs(out[3]) do
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', 100000, '*', 'channel', out[1], 'conversation', out[2], 'message', m)
  end
end

-- Reports: conversations, buyer messages by hour, what the bot could not answer.
if rep.new then rcount('conversations', {ch, dim('h', rep.hour)}) end
if rep.buyer then rcount('messages', {ch, dim('h', rep.hour)}) end
if rep.gap then
  redis.call('RPUSH', rep.gk, cjson.encode({rep.cid, rep.gap, rep.now, rep.mid}))
  redis.call('LTRIM', rep.gk, -5000, -1)
  redis.call('EXPIRE', rep.gk, rep.gap_ttl)
end

-- 3. Handoff effects.
local results = {}
local p, cid, now = ctx.p, ctx.cid, ctx.now
for _, e in ipairs(effects) do
  local r = {kind = e.kind}
  if e.kind == 'handoff' then
    if cur.state == 'QUEUED' or cur.state == 'WITH_AGENT' then
      r.outcome = 'already'
    else
      redis.call('DEL', h)
      redis.call('HSET', h, 'group', e.group, 'reason', e.reason, 'queued_at', now, 'reassignments', 0)
      local members = ctx.members[e.group] or {}
      local u = pick(p, members, now, nil)
      if u then
        assign(p, cid, u, now, ctx.timeout, ctx.max_reassignments)
        r.outcome, r.agent = 'assigned', u
      else
        r.outcome, r.position = 'queued', enqueue(p, cid, e.group, false)
        r.online = online_count(p, members, now)
        r.notice = queue_notice(h, r.online, ctx.closed)
        redis.call('HSET', h, 'told_position', r.position)
      end
      r.group, r.reason = e.group, e.reason
      -- reports: a conversation counts as handed over once, on the day it started
      rcount('handoffs', {dim('g', e.group)})
      if redis.call('HGET', KEYS[1], 'conv_handed') ~= '1' then
        redis.call('HSET', KEYS[1], 'conv_handed', '1')
        rcount_at(rep.ck or REPORT.k, 'handed_over', {ch, dim('g', e.group)})
      end
    end
  elseif e.kind == 'first_reply' then
    if not cur.first_reply_at then
      redis.call('HSET', h, 'first_reply_at', now)
      cancel_timer(p, h)
      redis.call('LPUSH', p .. 'stats:waits', tonumber(now) - tonumber(cur.queued_at))
      redis.call('LTRIM', p .. 'stats:waits', 0, 99)
      r.outcome = 'first'
    end
    -- reports: first-response time from the moment a human was needed; bot replies never reset it
    if cur.frt_done ~= '1' and cur.queued_at then
      redis.call('HSET', h, 'frt_done', '1')
      rsample('first_response', tonumber(now) - tonumber(cur.queued_at), {dim('a', e.agent), dim('g', cur.group)})
    end
  elseif e.kind == 'reassign' then
    if cur.state ~= 'WITH_AGENT' or cur.agent ~= e.agent or cur.assigned_at ~= e.version or cur.first_reply_at then
      r.outcome = 'stale'  -- the chat has moved on since the timer was set
    else
      local n = tonumber(cur.reassignments or '0') + 1
      redis.call('HSET', h, 'reassignments', n)
      r.from, r.group = cur.agent, cur.group
      local max = tonumber(ctx.max_reassignments)
      local u = nil
      if n <= max then u = pick(p, ctx.members[cur.group] or {}, now, cur.agent) end
      if u then
        release(p, cid, cur.agent)
        assign(p, cid, u, now, ctx.timeout, max)
        r.outcome, r.agent = 'reassigned', u
      elseif n <= max then
        -- nobody else is free: the chat stays where it is and is checked again after another timeout
        r.outcome, r.from = 'kept', nil
        set_timer(p, h, 'frt|' .. cid .. '|' .. cur.agent .. '|' .. cur.assigned_at .. '|' .. n, tonumber(now) + tonumber(ctx.timeout))
      else
        release(p, cid, cur.agent)
        cancel_timer(p, h)
        r.outcome = 'supervisor'
        r.position = enqueue(p, cid, cur.group, true)  -- back to the head of the queue
        redis.call('HSET', h, 'told_position', r.position, 'notice', 'pending', 'last_agent', cur.agent)
        -- The buyer is told only if the chat is still waiting after the grace period: an agent who
        -- comes back meanwhile takes it without a "resting" notice in between.
        redis.call('ZADD', p .. 'timers', tonumber(now) + tonumber(ctx.grace or 0), 'notice|' .. cid .. '|' .. n)
        -- nobody answered: a supervisor must follow up (listed on their desks until one takes it)
        r.followup = add_followup(p, 'reassignments', cid, now, {'agent', cur.agent, 'group', cur.group, 'reassignments', n})
      end
      if r.outcome == 'reassigned' or r.outcome == 'supervisor' then
        rcount('reassignments', {dim('a', cur.agent), dim('g', cur.group)})
      end
    end
  elseif e.kind == 'transfer' then
    rcount('transfers', {dim('a', cur.agent), dim('g', cur.group)})
    release(p, cid, cur.agent)
    r.from = cur.agent
    cancel_timer(p, h)
    if e.target_agent then
      assign(p, cid, e.target_agent, now, ctx.timeout, ctx.max_reassignments)
      r.outcome, r.agent, r.group = 'assigned', e.target_agent, cur.group
    else
      redis.call('HSET', h, 'group', e.group, 'reassignments', 0)
      local u = pick(p, ctx.members[e.group] or {}, now, cur.agent)
      r.group = e.group
      if u then
        assign(p, cid, u, now, ctx.timeout, ctx.max_reassignments)
        r.outcome, r.agent = 'assigned', u
      else
        r.outcome, r.position = 'queued', enqueue(p, cid, e.group, false)
        r.online = online_count(p, ctx.members[e.group] or {}, now)
        r.notice = queue_notice(h, r.online, ctx.closed)
        redis.call('HSET', h, 'told_position', r.position)
      end
    end
  elseif e.kind == 'close' then
    if cur.state then
      release(p, cid, cur.agent)
      if cur.group then redis.call('ZREM', p .. 'queue:' .. cur.group, cid) end
      cancel_timer(p, h)
      redis.call('DEL', h)
      r.outcome, r.from, r.group = 'closed', cur.agent, cur.group
      record_case(p, cid, cur, now, tonumber(ARGV[3]), KEYS[2])
      if cur.agent then
        rcount('closed', {dim('a', cur.agent), dim('g', cur.group)})
        redis.call('HSET', KEYS[1], 'last_agent', cur.agent, 'last_group', cur.group or '')
        if e.agent then rcount('rating_asked', {dim('a', cur.agent), dim('g', cur.group), ch}) end
      end
    else
      r.outcome = 'not_open'
    end
  elseif e.kind == 'notice' then
    -- the grace period after a re-queue is over: tell the buyer, unless the chat has moved on
    if cur.state == 'QUEUED' and cur.notice == 'pending' and (cur.reassignments or '0') == e.version then
      local members = ctx.members[cur.group] or {}
      r.outcome, r.group, r.reason = 'queued', cur.group, cur.reason
      r.position = redis.call('ZRANK', p .. 'queue:' .. cur.group, cid) + 1
      r.online = online_count(p, members, now)
      r.notice = queue_notice(h, r.online, ctx.closed)
      redis.call('HSET', h, 'told_position', r.position)
    else
      r.outcome = 'stale'
    end
  elseif e.kind == 'timer' then
    redis.call('ZADD', p .. 'timers', e.due, e.member)
    r.outcome = 'set'
  elseif e.kind == 'pick' then
    assign(p, cid, e.agent, now, ctx.timeout, ctx.max_reassignments)
    r.outcome, r.agent, r.group = 'assigned', e.agent, cur.group
  elseif e.kind == 'followup' then
    r.outcome = 'created'
    r.followup = add_followup(p, e.reason, cid, now, {'score', e.score or '', 'agent', e.agent or ''})
  elseif e.kind == 'rate' then
    redis.call('LPUSH', p .. 'stats:ratings', e.score)
    redis.call('LTRIM', p .. 'stats:ratings', 0, 999)
    r.outcome, r.score = 'rated', e.score
    local last = {dim('a', redis.call('HGET', KEYS[1], 'last_agent')), dim('g', redis.call('HGET', KEYS[1], 'last_group')), ch}
    rcount('ratings', last)
    rcount('rating_sum', last, tonumber(e.score))
    if tonumber(e.score) >= 4 then rcount('satisfied', last) end
    rcount('score:' .. e.score, {})
  end
  results[#results + 1] = r
end

if #REPORT.samples > 0 then results[#results + 1] = {kind = 'samples', samples = REPORT.samples} end

-- 4. Fan-out: the event names the chat's owner now, so the right desk gets it.
if ARGV[9] ~= '' then
  local event = cjson.decode(ARGV[9])
  event.agent = redis.call('HGET', h, 'agent') or nil
  event.results = results
  redis.call('PUBLISH', ARGV[8], cjson.encode(event))
end
redis.call('DEL', KEYS[4])
return cjson.encode(results)

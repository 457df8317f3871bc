-- Shared helpers for the handoff scripts (prepended to each script by bot/store.py).
-- Routing keys (queues, agents, timers) live beside the conversation keys; these scripts are
-- atomic on a single Redis primary.

local function hkey(p, cid) return p .. 'conv:{' .. cid .. '}:handoff' end
local function chats_key(p, u) return p .. 'agent:' .. u .. ':chats' end

-- Presence is liveness, so it is kept in the Redis server's own time (not the shop clock `now`, which
-- tests may move): each desk socket's score is when its lease ends (see store.agent_socket).
local function server_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function is_online(p, u, now)
  if redis.call('HGET', p .. 'agent:' .. u, 'status') == 'away' then return false end
  return redis.call('ZCOUNT', p .. 'presence:' .. u, server_time(), '+inf') > 0
end

-- The best free agent of a group: online, below capacity, fewest open chats, then longest idle.
-- `members` is a list of {username, capacity}; `exclude` is skipped.
local function pick(p, members, now, exclude)
  local best, best_load, best_idle = nil, nil, nil
  for _, m in ipairs(members) do
    local u, cap = m[1], tonumber(m[2])
    if u ~= exclude and is_online(p, u, now) then
      local load = redis.call('SCARD', chats_key(p, u))
      if load < cap then
        local idle = tonumber(redis.call('HGET', p .. 'agent:' .. u, 'idle_since') or '0')
        if best == nil or load < best_load or (load == best_load and idle < best_idle) then
          best, best_load, best_idle = u, load, idle
        end
      end
    end
  end
  return best
end

local function online_count(p, members, now)
  local n = 0
  for _, m in ipairs(members) do if is_online(p, m[1], now) then n = n + 1 end end
  return n
end

-- The chat's pending first-response timer, if any, is named in its handoff hash (field `frt`).
local function cancel_timer(p, h)
  local member = redis.call('HGET', h, 'frt')
  if member then redis.call('ZREM', p .. 'timers', member); redis.call('HDEL', h, 'frt') end
end

local function set_timer(p, h, member, due)
  redis.call('ZADD', p .. 'timers', due, member)
  redis.call('HSET', h, 'frt', member)
end

-- `max_reassignments`: once a chat has been moved that often, the supervisor was alerted and it
-- gets no new first-response timer (no endless loop of moves and notices).
-- Returns how to greet the buyer: nil (a new assignment), 'same' (taken back by the agent the buyer
-- last heard of, within the grace period after a re-queue: nothing to say) or 'other' (a colleague
-- takes over).
local function assign(p, cid, u, now, timeout, max_reassignments)
  local h = hkey(p, cid)
  local group = redis.call('HGET', h, 'group')
  local resumed = nil
  if redis.call('HGET', h, 'notice') == 'pending' then
    resumed = (redis.call('HGET', h, 'last_agent') == u) and 'same' or 'other'
  end
  redis.call('HDEL', h, 'notice', 'last_agent')
  cancel_timer(p, h)
  redis.call('HSET', h, 'state', 'WITH_AGENT', 'agent', u, 'assigned_at', now)
  redis.call('HDEL', h, 'first_reply_at', 'told_position')
  redis.call('SADD', chats_key(p, u), cid)
  if group then redis.call('ZREM', p .. 'queue:' .. group, cid) end
  redis.call('HSET', p .. 'agent:' .. u, 'idle_since', now)
  -- reports: queue wait (from the moment a human was needed to the first agent) once per handoff
  if redis.call('HGET', h, 'qw_done') ~= '1' then
    redis.call('HSET', h, 'qw_done', '1')
    rsample('queue_wait', tonumber(now) - tonumber(redis.call('HGET', h, 'queued_at') or now), {dim('g', group)})
  end
  rcount('assigned', {dim('a', u), dim('g', group)})
  if tonumber(redis.call('HGET', h, 'reassignments') or '0') <= tonumber(max_reassignments) then
    set_timer(p, h, 'frt|' .. cid .. '|' .. u .. '|' .. now, tonumber(now) + tonumber(timeout))
  end
  return resumed
end

-- Queue order is arrival order: a shop-wide sequence number, never a clock (two buyers can
-- arrive in the same millisecond). `at_head` puts the chat before everyone waiting.
local function enqueue(p, cid, group, at_head)
  local h = hkey(p, cid)
  redis.call('HSET', h, 'state', 'QUEUED', 'group', group)
  redis.call('HDEL', h, 'agent', 'assigned_at', 'first_reply_at')
  local seq = redis.call('INCR', p .. 'queue:seq')
  redis.call('ZADD', p .. 'queue:' .. group, at_head and -seq or seq, cid)
  return redis.call('ZRANK', p .. 'queue:' .. group, cid) + 1
end

-- What a queued buyer is told (kept in the handoff hash as `notice`, so a later turn knows it atomically):
-- their place in the queue while someone is on duty, else that the team is off for the day (`closed`:
-- outside business hours) or busy, with an invitation to leave a message.
local function queue_notice(h, online, closed)
  local kind = 'queued'
  if online == 0 then kind = closed and 'off_hours' or 'nobody_online' end
  redis.call('HSET', h, 'notice', kind)
  return kind
end

-- A follow-up for the supervisors (a low rating, a chat nobody answered after max_reassignments),
-- written in the same step as the event that calls for it; open until a supervisor takes it.
-- `fields` is a flat list of extra field/value pairs. Returns the follow-up's id.
local function add_followup(p, kind, cid, now, fields)
  local id = redis.call('INCR', p .. 'followups:seq')
  local key = p .. 'followup:' .. id
  redis.call('HSET', key, 'id', id, 'kind', kind, 'conversation', cid, 'created_at', now)
  if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
  redis.call('ZADD', p .. 'followups:open', id, id)
  return tostring(id)
end

local function release(p, cid, u)
  if u then redis.call('SREM', chats_key(p, u), cid) end
end

-- Hand queued chats of `group` to free agents, oldest first. Returns {cid, agent, resumed} triples.
local function drain(p, group, members, now, timeout, max_reassignments)
  local out = {}
  while true do
    local head = redis.call('ZRANGE', p .. 'queue:' .. group, 0, 0)
    if #head == 0 then break end
    local u = pick(p, members, now, nil)
    if not u then break end
    local resumed = assign(p, head[1], u, now, timeout, max_reassignments)
    out[#out + 1] = {head[1], u, resumed or ''}
  end
  return out
end

-- A closed chat stays browsable: "<cid>|<queued_at>|<agent>|<last transcript id>" scored by the
-- close time, in the closing agent's history, the shop's history and the buyer's own. The case's lines
-- are the conversation's stream after the previous case's last id, up to this one's. Older than `ttl`
-- (the transcript's lifetime) is dropped as new cases arrive.
local function record_case(p, cid, cur, now, ttl, transcript)
  local last = redis.call('XREVRANGE', transcript, '+', '-', 'COUNT', 1)
  local last_id = (last[1] and last[1][1]) or '0-0'
  local member = cid .. '|' .. (cur.queued_at or '') .. '|' .. (cur.agent or '') .. '|' .. last_id
  local keys = {p .. 'history', p .. 'conv:{' .. cid .. '}:cases'}
  if cur.agent then keys[#keys + 1] = p .. 'history:' .. cur.agent end
  for _, k in ipairs(keys) do
    redis.call('ZADD', k, now, member)
    redis.call('ZREMRANGEBYSCORE', k, '-inf', tonumber(now) - ttl)
    redis.call('EXPIRE', k, ttl)
  end
end

"""Everything Redis. The only module that knows keys and scripts.

Keys carry the configured prefix and a hash tag per conversation (`{<conversation id>}`), so every
multi-key step of one conversation stays on one Redis Cluster slot.

A turn is two round trips: one Lua script claims the platform message id (a lease, so a retry while
we work gets no second reply and a crash before commit does not swallow the message), takes the
conversation lock (a lease too) and loads the session; handlers run; a second script commits session,
transcript, dedupe mark, effects and the fan-out event after checking we still hold both, and unlocks.

Leases are short (LEASE, 5 s): a process killed mid-turn holds nothing for longer than that.
Connections come from a bounded pool that waits (it never fails a command because all connections
are busy); redis-py's per-command socket timeout is off, because in Python 3.11 it wraps every write
in a new task. Connection failures surface as StoreUnavailable at once (one quick reconnect first),
logged once per outage by `Outage`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import weakref
from pathlib import Path
from collections.abc import AsyncIterator, Sequence
from dataclasses import fields
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.types import Case, Effect, Handoff, Inbound, Note, Sender, Session, State, TranscriptEntry

_LUA = Path(__file__).resolve().parent / "lua"
log = logging.getLogger(__name__)
LEASE = 5.0          # seconds a message claim, a conversation lock or a timer is held without renewal
POOL_SIZE = 64       # connections per process; more turns than this wait for one
POOL_WAIT = 2.0      # seconds a command may wait for a free connection before the turn is "busy"


def _script(name: str) -> str:
    """A script from bot/lua/, with the shared helpers (report aggregates, routing) in front."""
    return "\n".join((_LUA / f"{part}.lua").read_text() for part in ("reports", "lib", name))


_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A counter that refuses (and does not count) beyond ARGV[1] within a window of ARGV[2] seconds.
_RESERVE_ATTEMPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return math.max(1, redis.call('TTL', KEYS[1]))
end
return 0
"""
_RELEASE_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


_TAKE_FOLLOWUP = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 'unknown' end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 'already' end
redis.call('HSET', KEYS[2], 'taken_by', ARGV[2], 'taken_at', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 'taken'
"""


def stamp(ts: float) -> str:
    """Times stored in routing state are fixed-format strings, so versions compare exactly."""
    return f"{ts:.3f}"


class StoreError(Exception):
    """A turn could not be committed (lost lock or claim); nothing was written."""


class StoreUnavailable(StoreError):
    """Redis cannot be reached; nothing was written. The buyer is asked to wait and the client resends."""


class StoreBusy(StoreError):
    """Overload: no connection or conversation lock came free in time; nothing was written."""


_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class Outage:
    """One log line when Redis becomes unreachable and one, with the duration, when it is back —
    instead of a traceback per failed operation."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since, self.failures = time.monotonic(), 0
            log.warning("redis unavailable (%s: %s); buyers are asked to wait and clients resend",
                        type(exc).__name__, exc)
        self.failures += 1

    def ok(self) -> None:
        if self.since is not None:
            log.warning("redis outage over after %.1f s (%d operations refused)",
                        time.monotonic() - self.since, self.failures)
            self.since = None

    @property
    def down(self) -> bool:
        return self.since is not None


class _Pool(BlockingConnectionPool):
    """Waits up to POOL_WAIT for a connection, then raises StoreBusy (not a connection error)."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError):
                raise StoreBusy("no Redis connection came free in time") from None
            raise


class NotAssigned(StoreError):
    """An agent acted on a chat it does not own (any more); nothing was written.

    The message is the reason: NOT_ASSIGNED, SAME_AGENT, TARGET_OFFLINE, TARGET_FULL or NOT_QUEUED.
    """


_REFUSALS = {"NOT_ASSIGNED", "SAME_AGENT", "TARGET_OFFLINE", "TARGET_FULL", "NOT_QUEUED"}


class Store:
    """Conversation state in Redis. One instance per process, shared by all adapters."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "xiaoer:",
        session_ttl: int = 30 * 86400,
        claim_lease: float = LEASE,
        lock_timeout: float = LEASE,
        dedupe_ttl: int = 86400,
        transcript_cap: int = 1000,
    ):
        self.redis = client
        self.prefix = prefix
        self.session_ttl = session_ttl
        self.claim_lease = claim_lease
        self.lock_timeout = lock_timeout
        self.dedupe_ttl = dedupe_ttl
        self.transcript_cap = transcript_cap
        self.outage = Outage()
        self._begin = client.register_script((_LUA / "begin.lua").read_text())
        self._abort = client.register_script((_LUA / "abort.lua").read_text())
        self._commit = client.register_script(_script("commit"))
        self.drain_samples: list[list[Any]] = []  # set by drain() before it returns (no await in between)
        self._drain = client.register_script(_script("drain"))
        self._claim_timers = client.register_script((_LUA / "timers.lua").read_text())
        self._extend_lease = client.register_script(_EXTEND_LOCK)
        self._reserve_attempt = client.register_script(_RESERVE_ATTEMPT)
        self._release_attempt = client.register_script(_RELEASE_ATTEMPT)
        self._presence = client.register_script(_PRESENCE)
        self._take_followup = client.register_script(_TAKE_FOLLOWUP)
        # In-process FIFO per conversation in front of the Redis lock, so that messages of one
        # conversation arriving at this process are handled in arrival order (Redis locks are not fair).
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @classmethod
    def from_url(cls, url: str, pool_size: int = POOL_SIZE, **kwargs: Any) -> Store:
        pool = _Pool.from_url(
            url, max_connections=pool_size, timeout=POOL_WAIT, decode_responses=True,
            socket_timeout=None, socket_connect_timeout=2.0, health_check_interval=10,
            **({} if url.startswith("unix:") else {"socket_keepalive": True}),
            # one immediate reconnect (a pooled connection may predate a Redis restart), then fail fast
            retry=Retry(NoBackoff(), 1),
        )
        return cls(aioredis.Redis(connection_pool=pool), **kwargs)

    def unavailable(self, exc: BaseException) -> bool:
        """True (and counted in the outage) when `exc` means Redis cannot be reached."""
        if isinstance(exc, StoreUnavailable) or isinstance(exc, _DOWN):
            self.outage.failed(exc)
            return True
        return False

    def transient(self, exc: BaseException) -> bool:
        """True for overload (StoreBusy) and outages: a background loop just tries again next round,
        without a traceback (an outage is logged once by `Outage`)."""
        return isinstance(exc, StoreBusy) or self.unavailable(exc)

    async def close(self) -> None:
        await self.redis.aclose()

    # ---- keys -------------------------------------------------------------------------------
    def _conv(self, conversation_id: str, part: str) -> str:
        if "{" in conversation_id or "}" in conversation_id:
            raise ValueError("conversation ids may not contain braces")
        return f"{self.prefix}conv:{{{conversation_id}}}:{part}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}events"

    # ---- health -------------------------------------------------------------------------------
    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # ---- turns --------------------------------------------------------------------------------
    async def begin_turn(self, inbound: Inbound) -> Turn | str:
        """Claim the message, lock the conversation and load it (one script; again only while another
        process holds this conversation's lock).

        A duplicate returns "done" (already committed) or "pending" (another attempt holds the claim; if
        that attempt died, its lease runs out within LEASE seconds and a later retry is handled).
        """
        cid = inbound.conversation_id
        local = self._local.get(cid)
        if local is None:
            local = self._local[cid] = asyncio.Lock()
        keys = [self._conv(cid, f"msg:{inbound.message_id}"), self._conv(cid, "lock"),  # validates the id
                self._conv(cid, "session"), self._conv(cid, "handoff")]
        token = secrets.token_hex(8)
        await local.acquire()  # first, before any await: arrival order is kept
        try:
            deadline = 0.0
            while True:
                status, *state = await self._begin(keys=keys, args=[token, int(self.claim_lease * 1000)])
                if status == "ok":
                    break
                if status != "locked":
                    local.release()
                    self.outage.ok()
                    return str(status)
                # Another process is in a turn of this conversation: its commit releases the lock.
                now = time.monotonic()
                deadline = deadline or now + self.lock_timeout * 2
                if now > deadline:
                    raise StoreBusy(f"conversation {cid} is busy")
                await asyncio.sleep(0.005)
        except BaseException as exc:
            local.release()
            await self._abort_quietly(keys[:2], token)
            if isinstance(exc, _DOWN):
                self.outage.failed(exc)
                raise StoreUnavailable(f"redis unavailable: {exc}") from exc
            raise
        self.outage.ok()
        session = _session_of(cid, inbound.channel, _pairs(state[0]), _pairs(state[1]))
        return Turn(self, inbound, keys, token, local, session)

    async def _abort_quietly(self, keys: list[str], token: str) -> None:
        try:
            await self._abort(keys=keys, args=[token])
        except Exception:
            pass  # Redis is gone: the leases run out by themselves

    async def load_session(self, conversation_id: str, channel: str) -> Session:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._conv(conversation_id, "session"))
            pipe.hgetall(self._conv(conversation_id, "handoff"))
            raw, handoff = await pipe.execute()
        return _session_of(conversation_id, channel, raw, handoff)

    async def history(self, conversation_id: str, limit: int = 200) -> list[TranscriptEntry]:
        try:
            rows = await self.redis.xrevrange(self._conv(conversation_id, "transcript"), count=limit)
        except _DOWN as exc:
            self.outage.failed(exc)
            raise StoreUnavailable(f"redis unavailable: {exc}") from exc
        return [_entry(fields_) for _, fields_ in reversed(rows)]

    async def append(self, conversation_id: str, entries: Sequence[TranscriptEntry], event: dict[str, Any],
                     push_channel: str | None = None) -> None:
        """Append notices (queue position, assignment) outside a turn and fan them out; with
        `push_channel`, also queue them in the outbox for delivery by that channel's API."""
        key = self._conv(conversation_id, "transcript")
        async with self.redis.pipeline(transaction=True) as pipe:
            for e in entries:
                pipe.xadd(key, _entry_fields(e), maxlen=self.transcript_cap, approximate=True)
                if push_channel:
                    pipe.xadd(self.outbox_key, {"channel": push_channel, "conversation": conversation_id,
                                                "message": json.dumps(e.to_json(), ensure_ascii=False)},
                              maxlen=100000, approximate=True)
            pipe.expire(key, self.session_ttl)
            pipe.hget(self._conv(conversation_id, "handoff"), "agent")
            *_, owner = await pipe.execute()
        await self.publish({**event, "agent": owner})

    async def publish(self, event: dict[str, Any]) -> None:
        await self.redis.publish(self.events_channel, json.dumps(event, ensure_ascii=False))

    # ---- handoff routing ----------------------------------------------------------------------
    async def drain(self, routing: dict[str, Any]) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, int, str]]]:
        """Assign queued chats to free agents; returns (assigned (cid, agent, group, resumed), moved (cid, position, group)).

        `resumed` is "same" when the agent the buyer last heard of took the chat back within the grace
        period after a re-queue, "other" when a colleague took it then, else ""."""
        raw = json.loads(await self._drain(args=[json.dumps({**routing, **self.report_keys(routing), "p": self.prefix})]))
        self.drain_samples = raw.get("samples") or []  # queue waits ended by this drain, for the metrics
        return [tuple(a) for a in raw.get("assigned") or []], [tuple(m) for m in raw.get("moved") or []]  # type: ignore[misc]

    async def agent_socket(self, username: str, socket_id: str, lease: float) -> None:
        """Mark one desk socket of an agent alive for `lease` seconds (renewed by its heartbeat), in the
        Redis server's time, so every process agrees and a shop clock moved by tests does not matter."""
        await self._presence(keys=[f"{self.prefix}presence:{username}"], args=[socket_id, lease])

    async def agent_socket_closed(self, username: str, socket_id: str) -> None:
        await self.redis.zrem(f"{self.prefix}presence:{username}", socket_id)

    async def set_agent_status(self, username: str, status: str) -> None:
        await self.redis.hset(f"{self.prefix}agent:{username}", "status", status)

    async def agent_state(self, username: str, now: float) -> tuple[str, bool, list[str]]:
        """(status, online, open chats) of one agent."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(f"{self.prefix}agent:{username}", "status")
            pipe.time()
            pipe.zrange(f"{self.prefix}presence:{username}", -1, -1, withscores=True)  # the latest lease
            pipe.smembers(f"{self.prefix}agent:{username}:chats")
            status, (secs, micros), latest, chats = await pipe.execute()
        status = status or "online"
        alive = bool(latest) and latest[0][1] >= secs + micros / 1e6
        return status, alive and status != "away", sorted(chats)

    async def queue(self, group: str, limit: int = 200) -> list[tuple[str, float]]:
        """Queued conversation ids of a group with their scores, head first."""
        return [(cid, score) for cid, score in await self.redis.zrange(f"{self.prefix}queue:{group}", 0, limit - 1, withscores=True)]

    async def queue_length(self, group: str) -> int:
        return int(await self.redis.zcard(f"{self.prefix}queue:{group}"))

    async def handoff_of(self, conversation_id: str) -> Handoff | None:
        raw = await self.redis.hgetall(self._conv(conversation_id, "handoff"))
        return _handoff(raw) if raw.get("state") in (State.QUEUED, State.WITH_AGENT) else None

    # ---- reports (per-day aggregates written by the commit scripts) ----------------------------
    REPORT_TTL = 800 * 86400  # aggregates hold no personal data; kept a little over two years

    def _report_key(self, day: str) -> str:
        return f"{self.prefix}report:{day}"

    def report_keys(self, ctx: dict[str, Any] | None) -> dict[str, Any]:
        """The keys behind a report context (`day`, `conv_day`, `gap` from bot.reports), for the scripts."""
        if not ctx or not ctx.get("day"):
            return {}
        out: dict[str, Any] = {"rk": self._report_key(ctx["day"]), "rttl": self.REPORT_TTL}
        if "conv_day" in ctx:
            out["ck"] = self._report_key(ctx["conv_day"] or ctx["day"])
        if ctx.get("gap"):
            out["gk"] = self._report_key(ctx["day"]) + ":gaps"
            out["gap_ttl"] = self.session_ttl
        return out

    async def report_days(self, days: Sequence[str]) -> list[dict[str, str]]:
        """The aggregate hash of each day (empty for a day without events), one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self._report_key(day))
            return list(await pipe.execute())

    async def gap_days(self, days: Sequence[str]) -> list[list[tuple[str, str, float, str]]]:
        """Buyer messages the bot could not answer, per day: (conversation id, text, unix time, message id)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.lrange(self._report_key(day) + ":gaps", 0, -1)
            rows = await pipe.execute()
        out = []
        for raw in rows:
            day_rows = []
            for item in raw:
                try:
                    cid, text, ts, mid = json.loads(item)
                    day_rows.append((str(cid), str(text), float(ts), str(mid)))
                except (ValueError, TypeError):
                    continue
            out.append(day_rows)
        return out

    # ---- privacy: forget one buyer's conversation ------------------------------------------------
    async def forget(self, conversation_id: str) -> int:
        """Delete every key of one conversation and every trace of it in shared structures (queues,
        agents' open chats, closed-case histories, timers, outbox, unanswered-question lists, WeChat
        quota counters). Report aggregates are counts without personal data and stay. Returns the
        number of keys and entries removed."""
        cid = conversation_id
        self._conv(cid, "session")  # validates the id
        esc = _glob_escape(cid)
        p = _glob_escape(self.prefix)
        removed = 0
        keys = [k async for k in self.redis.scan_iter(match=f"{p}conv:\\{{{esc}\\}}:*", count=500)]
        channel, _, buyer = cid.partition(":")
        if channel in ("wechat", "wecom_kf") and buyer:
            for part in ("seen", "sent"):
                keys += [k async for k in self.redis.scan_iter(match=f"{p}{channel}:*:{part}:{_glob_escape(buyer)}", count=500)]
        if keys:
            removed += await self.redis.delete(*keys)
        async for key in self.redis.scan_iter(match=f"{p}queue:*", count=500):
            if await self.redis.type(key) == "zset":
                removed += await self.redis.zrem(key, cid)
        async for key in self.redis.scan_iter(match=f"{p}agent:*:chats", count=500):
            removed += await self.redis.srem(key, cid)
        history = [k async for k in self.redis.scan_iter(match=f"{p}history:*", count=500)] + [f"{self.prefix}history"]
        for key, pattern in [(k, f"{esc}|*") for k in history] + [(f"{self.prefix}timers", f"*|{esc}|*"),
                                                                  (f"{self.prefix}timers:leased", f"*|{esc}|*")]:
            members = [m async for m, _ in self.redis.zscan_iter(key, match=pattern, count=500)]
            if members:
                removed += await self.redis.zrem(key, *members)
        last = "-"
        while True:
            rows = await self.redis.xrange(self.outbox_key, min=last, count=1000)
            rows = [r for r in rows if r[0] != last]
            if not rows:
                break
            mine = [i for i, f in rows if f.get("conversation") == cid]
            if mine:
                removed += await self.redis.xdel(self.outbox_key, *mine)
            last = rows[-1][0]
        async for key in self.redis.scan_iter(match=f"{p}report:*:gaps", count=500):
            for item in await self.redis.lrange(key, 0, -1):
                try:
                    mine = json.loads(item)[0] == cid
                except (ValueError, TypeError, IndexError, KeyError):
                    continue
                if mine:
                    removed += await self.redis.lrem(key, 0, item)
        return removed

    async def recent_waits(self) -> list[float]:
        """Recent waits from handoff to an agent's first reply, in seconds (newest first)."""
        return [float(v) for v in await self.redis.lrange(f"{self.prefix}stats:waits", 0, 49)]

    # ---- history of closed chats and internal notes ----------------------------------------------
    # Kept cheap for a small shop: sorted sets of closed cases (per agent, per buyer, shop-wide),
    # recorded by the close step in commit.lua; a text search reads the cases' transcripts.
    async def closed_cases(self, agent: str | None, since: float, until: float, limit: int = 500) -> list[Case]:
        """Closed cases, newest first: one agent's, or (agent None) the whole shop's."""
        key = f"{self.prefix}history:{agent}" if agent else f"{self.prefix}history"
        rows = await self.redis.zrevrangebyscore(key, until, since, start=0, num=limit, withscores=True)
        return [c for c in (_case(m, score) for m, score in rows) if c]

    async def conversation_cases(self, conversation_id: str, limit: int = 100) -> list[Case]:
        """A buyer's closed cases, newest first."""
        rows = await self.redis.zrevrange(self._conv(conversation_id, "cases"), 0, limit - 1, withscores=True)
        cases = [c for c in (_case(m, score) for m, score in rows) if c]
        return sorted(cases, key=lambda c: _stream_id(c.last_id), reverse=True)

    async def case_history(self, case: Case) -> list[TranscriptEntry]:
        """The case's lines: the transcript after the buyer's previous case, up to this one's last line."""
        end = _stream_id(case.last_id)
        earlier = [c.last_id for c in await self.conversation_cases(case.conversation_id) if _stream_id(c.last_id) < end]
        start = earlier[0] if earlier else "-"
        rows = await self.redis.xrange(self._conv(case.conversation_id, "transcript"), min=start, max=case.last_id)
        return [_entry(fields_) for sid, fields_ in rows if sid != start]

    async def add_note(self, conversation_id: str, note: Note, cap: int = 200) -> None:
        key = self._conv(conversation_id, "notes")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(note.to_json(), ensure_ascii=False))
            pipe.ltrim(key, -cap, -1)
            pipe.expire(key, self.session_ttl)
            await pipe.execute()

    async def notes(self, conversation_id: str) -> list[Note]:
        out = []
        for raw in await self.redis.lrange(self._conv(conversation_id, "notes"), 0, -1):
            try:
                d = json.loads(raw)
                out.append(Note(str(d["id"]), str(d["agent"]), str(d["text"]), float(d["ts"])))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    # ---- images (checked and encoded by bot/files.py) --------------------------------------------
    async def put_file(self, file_id: str, fields: dict[str, str]) -> None:
        key = f"{self.prefix}file:{file_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.session_ttl)
            await pipe.execute()

    async def get_file(self, file_id: str) -> dict[str, str]:
        return await self.redis.hgetall(f"{self.prefix}file:{file_id}")

    # ---- supervisor follow-ups ---------------------------------------------------------------
    # Created by the commit script together with their event (see add_followup in lib.lua).
    async def followup(self, followup_id: str) -> dict[str, str] | None:
        if not followup_id.isdigit():
            return None
        raw = await self.redis.hgetall(f"{self.prefix}followup:{followup_id}")
        return raw or None

    async def open_followups(self, limit: int = 200) -> list[dict[str, str]]:
        """Follow-ups nobody has taken yet, oldest first."""
        ids = await self.redis.zrange(f"{self.prefix}followups:open", 0, limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(f"{self.prefix}followup:{i}")
            rows = await pipe.execute()
        return [r for r in rows if r]

    async def take_followup(self, followup_id: str, username: str, now: float) -> str:
        """Mark a follow-up handled by `username`: "taken", or "already" (someone else was first) or
        "unknown". Atomic, so two supervisors clicking at once get one "taken"."""
        if not followup_id.isdigit():
            return "unknown"
        return str(await self._take_followup(keys=[f"{self.prefix}followups:open", f"{self.prefix}followup:{followup_id}"],
                                             args=[followup_id, username, stamp(now), self.session_ttl]))

    # ---- outbox (delivery by platform APIs) ----------------------------------------------------
    @property
    def outbox_key(self) -> str:
        return f"{self.prefix}outbox"

    async def outbox_group(self, group: str = "delivery") -> None:
        try:
            await self.redis.xgroup_create(self.outbox_key, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def outbox_read(self, consumer: str, count: int = 20, block_ms: int = 1000, group: str = "delivery") -> list[tuple[str, dict[str, str]]]:
        """New outbox entries for this consumer, plus entries a dead consumer held for over 30 s."""
        _, claimed, *_ = await self.redis.xautoclaim(self.outbox_key, group, consumer, min_idle_time=30000, count=count)
        if claimed:
            return [(i, f) for i, f in claimed if f]
        rows = await self.redis.xreadgroup(group, consumer, {self.outbox_key: ">"}, count=count, block=block_ms or None)
        return [(i, f) for _, entries in rows for i, f in entries]

    async def outbox_ack(self, entry_id: str, group: str = "delivery") -> None:
        await self.redis.xack(self.outbox_key, group, entry_id)

    async def outbox_renew(self, consumer: str, entry_ids: Sequence[str], group: str = "delivery") -> None:
        """Reset the idle time of entries this consumer still works on, so nobody takes them over."""
        for i in range(0, len(entry_ids), 500):
            await self.redis.xclaim(self.outbox_key, group, consumer, min_idle_time=0,
                                    message_ids=list(entry_ids[i:i + 500]), justid=True)

    async def outbox_lease(self, conversation_id: str, consumer: str, ttl_ms: int) -> str:
        """Who delivers this conversation's outbox entries now (one consumer at a time keeps them in
        order): this consumer when the lease was free or already ours, else the holder."""
        key = self._conv(conversation_id, "outbox-lease")
        for _ in range(2):
            if await self.redis.set(key, consumer, nx=True, px=ttl_ms):
                return consumer
            owner = await self.redis.get(key)
            if owner:
                return owner
        return consumer

    async def outbox_lease_renew(self, conversation_ids: Sequence[str], consumer: str, ttl_ms: int) -> None:
        for cid in conversation_ids:
            await self._extend_lease(keys=[self._conv(cid, "outbox-lease")], args=[consumer, ttl_ms])

    async def outbox_hand_over(self, entry_id: str, owner: str, group: str = "delivery") -> None:
        """Give an entry to the consumer that delivers its conversation (it finds it in its pending list)."""
        await self.redis.xclaim(self.outbox_key, group, owner, min_idle_time=0, message_ids=[entry_id], justid=True)

    async def outbox_mine(self, consumer: str, known: set[str], count: int = 100, before: str = "+",
                          group: str = "delivery") -> list[tuple[str, dict[str, str]]]:
        """Entries pending for this consumer (up to id `before`) that it does not hold yet: handed over by another."""
        rows = await self.redis.xpending_range(self.outbox_key, group, min="-", max=before, count=count + len(known), consumername=consumer)
        ids = [r["message_id"] for r in rows if r["message_id"] not in known][:count]
        if not ids:
            return []
        claimed = await self.redis.xclaim(self.outbox_key, group, consumer, min_idle_time=0, message_ids=ids)
        return [(i, f) for i, f in claimed if f]

    async def outbox_add(self, channel: str, conversation_id: str, messages: Sequence[dict[str, Any]]) -> None:
        """Queue messages for delivery by a channel's API outside a turn (e.g. a WeChat reply that
        missed the passive window)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for m in messages:
                pipe.xadd(self.outbox_key, {"channel": channel, "conversation": conversation_id,
                                            "message": json.dumps(m, ensure_ascii=False)},
                          maxlen=100000, approximate=True)
            await pipe.execute()

    async def outbox_attempts(self, entry_id: str, group: str = "delivery") -> int:
        rows = await self.redis.xpending_range(self.outbox_key, group, min=entry_id, max=entry_id, count=1)
        return int(rows[0]["times_delivered"]) if rows else 0

    # ---- timers -------------------------------------------------------------------------------
    async def add_timer(self, member: str, due: float) -> None:
        await self.redis.zadd(f"{self.prefix}timers", {member: due})

    async def claim_timers(self, now: float, lease: float, limit: int = 50) -> list[str]:
        """Due timers, each leased to this caller; a crashed holder's lease expires and it fires again."""
        due = list(await self._claim_timers(keys=[f"{self.prefix}timers", f"{self.prefix}timers:leased"], args=[now, lease, limit]))
        self.outage.ok()  # polled every quarter second: notices the end of an outage without traffic
        return due

    async def ack_timer(self, member: str) -> None:
        await self.redis.zrem(f"{self.prefix}timers:leased", member)

    async def pending_timers(self) -> list[tuple[str, float]]:
        return [(m, s) for m, s in await self.redis.zrange(f"{self.prefix}timers", 0, -1, withscores=True)]

    # ---- platform tokens and quotas -------------------------------------------------------------
    def wechat_tokens(self, app_id: str) -> WeChatTokens:
        return WeChatTokens(self.redis, f"{self.prefix}wechat:{app_id}:")

    def wecom_kf_state(self, corp_id: str) -> WeComKfState:
        return WeComKfState(self.redis, f"{self.prefix}wecom_kf:{corp_id}:")

    # ---- desk logins --------------------------------------------------------------------------
    async def create_login(self, token: str, username: str, ttl: int) -> None:
        await self.redis.set(f"{self.prefix}login:{token}", username, ex=ttl)

    async def login_user(self, token: str) -> str | None:
        return await self.redis.get(f"{self.prefix}login:{token}")

    async def delete_login(self, token: str) -> None:
        await self.redis.delete(f"{self.prefix}login:{token}")

    async def login_failures(self, username: str) -> int:
        return int(await self.redis.get(f"{self.prefix}login-failures:{username}") or 0)

    async def count_login_failure(self, username: str, window: int) -> int:
        key = f"{self.prefix}login-failures:{username}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window)
            count, _ = await pipe.execute()
        return int(count)

    async def reserve_login_attempt(self, client: str, limit: int, window: int) -> int:
        """Count one login attempt of a client address before its password is checked (so parallel
        guesses count too); 0 when allowed, else the seconds until the client may try again."""
        return int(await self._reserve_attempt(keys=[f"{self.prefix}login-client:{client}"], args=[limit, window]))

    async def release_login_attempt(self, client: str) -> None:
        """A successful login does not count against its address."""
        await self._release_attempt(keys=[f"{self.prefix}login-client:{client}"])

    async def known_login_client(self, username: str, client: str) -> bool:
        """Did this address log in as this agent before (within the remembered period)?"""
        return bool(await self.redis.sismember(f"{self.prefix}login-known:{username}", client))

    async def remember_login_client(self, username: str, client: str, ttl: int) -> None:
        key = f"{self.prefix}login-known:{username}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, client)
            pipe.expire(key, ttl)
            await pipe.execute()

    # ---- shared secrets -----------------------------------------------------------------------
    async def shared_secret(self, name: str) -> str:
        """A random secret created once and shared by every process (e.g. the widget token key)."""
        key = f"{self.prefix}secret:{name}"
        await self.redis.set(key, secrets.token_hex(32), nx=True)
        value = await self.redis.get(key)
        assert value
        return value

    # ---- fan-out ------------------------------------------------------------------------------
    async def subscribe_events(self) -> AsyncIterator[dict[str, Any]]:
        """Committed conversation events from every process (pub/sub: fire and forget).

        The subscription is confirmed before this returns, so nothing committed afterwards is missed.
        """
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.events_channel)
        return _decode_events(pubsub)


async def _decode_events(pubsub: Any) -> AsyncIterator[dict[str, Any]]:
    try:
        async for message in pubsub.listen():
            try:
                yield json.loads(message["data"])
            except (ValueError, TypeError):
                continue
    finally:
        await pubsub.aclose()


class WeChatTokens:
    """The access_token shared by all processes (one refresher at a time) and the per-buyer counts
    behind WeChat's 48-hour / 5-message rule for customer-service messages."""

    WINDOW = 48 * 3600

    def __init__(self, client: aioredis.Redis, key: str):
        self.redis = client
        self.key = key
        self._holder = secrets.token_hex(8)
        self._release = client.register_script(_RELEASE_CLAIM)

    async def get_token(self) -> str | None:
        return await self.redis.get(self.key + "token")

    async def set_token(self, token: str, ttl: float) -> None:
        await self.redis.set(self.key + "token", token, ex=max(1, int(ttl)))

    async def refresh_lock(self, ttl: float) -> bool:
        return bool(await self.redis.set(self.key + "refresh", self._holder, nx=True, px=int(ttl * 1000)))

    async def release_refresh_lock(self) -> None:
        await self._release(keys=[self.key + "refresh"], args=[self._holder])

    async def mark_buyer_message(self, openid: str, ts: float) -> None:
        await self.redis.set(self.key + f"seen:{openid}", repr(ts), ex=self.WINDOW + 3600)

    async def last_buyer_message(self, openid: str) -> float | None:
        value = await self.redis.get(self.key + f"seen:{openid}")
        return float(value) if value else None

    async def count_api_message(self, openid: str, message_key: str, window_start: float, now: float) -> int:
        """Record one API message (a retry of the same key counts once); the count since window_start."""
        key = self.key + f"sent:{openid}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", f"({window_start}")
            pipe.zadd(key, {message_key: now})
            pipe.zcard(key)
            pipe.expire(key, self.WINDOW + 3600)
            _, _, count, _ = await pipe.execute()
        return int(count)


class WeComKfState(WeChatTokens):
    """WeCom customer-service state of one corp: the access_token and the 48-hour / 5-message counts
    (as for WeChat, per "<open_kfid>:<external_userid>"), plus per customer-service account the
    sync_msg cursor, the puller lock (one puller at a time) and the newest callback Token to pull with."""

    PENDING_TTL = 600  # a callback's Token is valid for 10 minutes

    def __init__(self, client: aioredis.Redis, key: str):
        super().__init__(client, key)
        self._extend = client.register_script(_EXTEND_LOCK)

    async def get_cursor(self, open_kfid: str) -> str:
        return await self.redis.get(self.key + f"cursor:{open_kfid}") or ""

    async def set_cursor(self, open_kfid: str, cursor: str) -> None:
        await self.redis.set(self.key + f"cursor:{open_kfid}", cursor)

    async def offer_pull(self, open_kfid: str, sync_token: str) -> None:
        """A callback said there is something to pull; the next puller takes this Token."""
        await self.redis.set(self.key + f"pending:{open_kfid}", sync_token, ex=self.PENDING_TTL)

    async def take_pull(self, open_kfid: str) -> str | None:
        """The offered Token, removed (GETDEL), or None when no callback came since the last take."""
        return await self.redis.getdel(self.key + f"pending:{open_kfid}")

    async def has_pull(self, open_kfid: str) -> bool:
        return bool(await self.redis.exists(self.key + f"pending:{open_kfid}"))

    async def pull_lock(self, open_kfid: str, ttl: float) -> bool:
        return bool(await self.redis.set(self.key + f"pull:{open_kfid}", self._holder, nx=True, px=int(ttl * 1000)))

    async def extend_pull_lock(self, open_kfid: str, ttl: float) -> bool:
        """Keep the lock during a long pull; False when it was lost (expired and taken by another)."""
        return bool(await self._extend(keys=[self.key + f"pull:{open_kfid}"], args=[self._holder, int(ttl * 1000)]))

    async def release_pull_lock(self, open_kfid: str) -> None:
        await self._release(keys=[self.key + f"pull:{open_kfid}"], args=[self._holder])


_PRESENCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)  -- sockets of processes that died
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""


_EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Turn:
    """One conversation turn under lock. Use as `async with`; `commit` is the only write (and unlocks)."""

    def __init__(self, store: Store, inbound: Inbound, keys: list[str], token: str, local: asyncio.Lock,
                 session: Session):
        self.store = store
        self.inbound = inbound
        self.session = session
        self._claim_key, self._lock_key = keys[0], keys[1]
        self._token = token
        self._claim = f"pending:{token}"
        self._local = local
        self.committed = False

    async def commit(
        self,
        session: Session,
        entries: Sequence[TranscriptEntry],
        event: dict[str, Any] | None,
        effects: Sequence[Effect] = (),
        routing: dict[str, Any] | None = None,
        push: Sequence[TranscriptEntry] = (),
        report: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Write the turn atomically and release the lock; returns one result per effect.

        Raises NotAssigned (and writes nothing) when an agent acts on a chat it no longer owns.
        """
        store = self.store
        cid = self.inbound.conversation_id
        payload = [list(_entry_fields(e).values()) for e in entries]
        effects_json = [{k: v for k, v in vars(e).items() if v is not None} for e in effects]
        ctx = {**(routing or {}), **store.report_keys(routing), "p": store.prefix, "cid": cid} if effects else {}
        keys = store.report_keys(report)
        rep = {k: v for k, v in {**(report or {}), "k": keys.get("rk"), "ck": keys.get("ck"), "ttl": keys.get("rttl"),
               "gk": keys.get("gk"), "gap_ttl": keys.get("gap_ttl"), "cid": cid}.items() if v is not None} if keys else None
        try:
            raw = await store._commit(
                keys=[store._conv(cid, "session"), store._conv(cid, "transcript"), self._claim_key,
                      self._lock_key, store._conv(cid, "handoff"), store.outbox_key,
                      store._conv(cid, "transcript:compact")],
                args=[
                    self._token, self._claim, store.session_ttl, store.dedupe_ttl, store.transcript_cap,
                    json.dumps(_session_to_hash(session), ensure_ascii=False),
                    json.dumps(payload, ensure_ascii=False),
                    store.events_channel, json.dumps(event, ensure_ascii=False) if event else "",
                    json.dumps(effects_json), json.dumps(ctx),
                    json.dumps([session.channel, cid, [json.dumps(e.to_json(), ensure_ascii=False) for e in push]],
                               ensure_ascii=False) if push else "",
                    json.dumps(rep, ensure_ascii=False) if rep else "",
                ],
            )
        except ResponseError as exc:
            if str(exc) in _REFUSALS:
                raise NotAssigned(str(exc)) from None
            raise StoreError(f"commit of {cid} failed: {exc}") from exc
        except _DOWN as exc:
            store.outage.failed(exc)
            raise StoreUnavailable(f"commit of {cid} failed: redis unavailable: {exc}") from exc
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"commit of {cid} failed: {exc}") from exc
        self.committed = True
        results = json.loads(raw)
        return results if isinstance(results, list) else []

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if not self.committed:
                # Give the message back so a retry is handled, not swallowed; release the lock.
                await self.store._abort_quietly([self._claim_key, self._lock_key], self._token)
        finally:
            self._local.release()


_INT_FIELDS = {"miss_count", "turns", "cases"}
_FLOAT_FIELDS = {"created_at", "updated_at", "last_buyer_at"}
_NOT_STORED = {"conversation_id", "handoff"}


def _glob_escape(text: str) -> str:
    """A literal for SCAN/ZSCAN MATCH patterns."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _session_to_hash(session: Session) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields(Session):
        value = getattr(session, f.name)
        if f.name in _NOT_STORED or value is None:
            continue
        if f.name == "state" and value in (State.QUEUED, State.WITH_AGENT):
            value = State.BOT  # the handoff hash owns these states
        elif value == f.default:
            continue  # defaults are not stored (loading fills them in): fewer bytes per conversation
        out[f.name] = repr(value) if isinstance(value, float) else str(value)
    return out


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


def _session_of(conversation_id: str, channel: str, raw: dict[str, str], handoff: dict[str, str]) -> Session:
    """The session with its handoff record, built once (no intermediate copies)."""
    state = handoff.get("state")
    if state in (State.QUEUED, State.WITH_AGENT):
        return _session_from_hash(conversation_id, channel, raw, handoff=_handoff(handoff), state=State(state))
    session = _session_from_hash(conversation_id, channel, raw) if raw else Session(conversation_id, channel)
    if session.state in (State.QUEUED, State.WITH_AGENT):
        session = session.evolve(state=State.BOT)  # the handoff was closed outside this turn
    return session


def _session_from_hash(conversation_id: str, channel: str, raw: dict[str, str], **override: Any) -> Session:
    known = {f.name for f in fields(Session)} - _NOT_STORED
    values: dict[str, Any] = {"conversation_id": conversation_id, "channel": raw.get("channel", channel)}
    for key, value in raw.items():
        if key not in known or key in values:
            continue
        if key in _INT_FIELDS:
            values[key] = int(value)
        elif key in _FLOAT_FIELDS:
            values[key] = float(value)
        elif key == "state":
            values[key] = State(value)
        else:
            values[key] = value
    values.update(override)
    return Session(**values)


def _handoff(raw: dict[str, str]) -> Handoff:
    def num(key: str) -> float | None:
        return float(raw[key]) if raw.get(key) else None

    return Handoff(
        state=State(raw["state"]), group=raw.get("group", ""), reason=raw.get("reason", ""),
        queued_at=num("queued_at") or 0.0, agent=raw.get("agent") or None, assigned_at=num("assigned_at"),
        first_reply_at=num("first_reply_at"), reassignments=int(raw.get("reassignments") or 0),
        version=raw.get("assigned_at", ""), notice=raw.get("notice", ""),
    )


def _case(member: str, closed_at: float) -> Case | None:
    parts = member.split("|")
    if len(parts) != 4:
        return None
    cid, queued_at, agent, last_id = parts
    try:
        opened = float(queued_at) if queued_at else closed_at
        _stream_id(last_id)
    except ValueError:
        return None
    return Case(cid, opened, float(closed_at), agent or None, last_id)


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _entry_fields(e: TranscriptEntry) -> dict[str, str]:
    return {
        "id": e.id, "from": str(e.sender), "text": e.text, "ts": repr(e.ts), "agent": e.agent or "",
        "buttons": json.dumps(e.buttons, ensure_ascii=False) if e.buttons else "",
        "image": e.image,
    }


def _entry(raw: dict[str, str]) -> TranscriptEntry:
    buttons = tuple(tuple(b) for b in json.loads(raw["buttons"])) if raw.get("buttons") else ()
    return TranscriptEntry(
        id=raw["id"], sender=Sender(raw["from"]), text=raw["text"], ts=float(raw["ts"]),
        agent=raw.get("agent") or None, buttons=buttons, image=raw.get("image", ""),  # type: ignore[arg-type]
    )

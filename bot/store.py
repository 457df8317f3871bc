"""Everything Redis. The only module that knows keys and scripts.

Keys carry the configured prefix and a hash tag per conversation (`{<conversation id>}`), so every
multi-key step of one conversation stays on one Redis Cluster slot.

A turn is: claim the platform message id (a lease, so a retry while we work gets no second reply and
a crash before commit does not swallow the message) -> take the conversation lock -> load the session
-> ... handlers ... -> commit session, transcript, dedupe mark and the fan-out event in one Lua script
that first checks we still hold the lock.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, fields
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from bot.types import Inbound, Sender, Session, State, TranscriptEntry

_COMMIT = """
-- KEYS: session, transcript, message claim, lock
-- ARGV: lock token, claim token, session ttl (s), dedupe ttl (s), transcript cap, session json,
--       entries json, event channel, event json
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return redis.error_reply('LOST_LOCK') end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return redis.error_reply('LOST_CLAIM') end
local session = cjson.decode(ARGV[6])
redis.call('DEL', KEYS[1])
local flat = {}
for k, v in pairs(session) do flat[#flat + 1] = k; flat[#flat + 1] = v end
if #flat > 0 then redis.call('HSET', KEYS[1], unpack(flat)) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
for _, e in ipairs(cjson.decode(ARGV[7])) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'id', e[1], 'from', e[2], 'text', e[3], 'ts', e[4])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], 'done', 'EX', ARGV[4])
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
return 1
"""

_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StoreError(Exception):
    """A turn could not be committed (lost lock or claim); nothing was written."""


class Store:
    """Conversation state in Redis. One instance per process, shared by all adapters."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "xiaoer:",
        session_ttl: int = 30 * 86400,
        claim_lease: float = 30.0,
        lock_timeout: float = 15.0,
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
        self._commit = client.register_script(_COMMIT)
        self._release_claim = client.register_script(_RELEASE_CLAIM)
        # In-process FIFO per conversation in front of the Redis lock, so that messages of one
        # conversation arriving at this process are handled in arrival order (Redis locks are not fair).
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        return cls(aioredis.from_url(url, decode_responses=True, health_check_interval=30), **kwargs)

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
    async def begin_turn(self, inbound: Inbound) -> Turn | None:
        """Claim the message and lock the conversation; None when the message is a duplicate."""
        local = self._local.get(inbound.conversation_id)
        if local is None:
            local = self._local[inbound.conversation_id] = asyncio.Lock()
        await local.acquire()  # first, before any await: arrival order is kept
        claim_key = self._conv(inbound.conversation_id, f"msg:{inbound.message_id}")
        claim = f"pending:{secrets.token_hex(8)}"
        try:
            if not await self.redis.set(claim_key, claim, nx=True, px=int(self.claim_lease * 1000)):
                local.release()
                return None
            turn = Turn(self, inbound, claim_key, claim, local)
            await turn.acquire()
        except BaseException:
            if local.locked():
                local.release()
            await self._release_claim(keys=[claim_key], args=[claim])
            raise
        return turn

    async def load_session(self, conversation_id: str, channel: str) -> Session:
        raw = await self.redis.hgetall(self._conv(conversation_id, "session"))
        if not raw:
            return Session(conversation_id=conversation_id, channel=channel)
        return _session_from_hash(conversation_id, channel, raw)

    async def history(self, conversation_id: str, limit: int = 200) -> list[TranscriptEntry]:
        rows = await self.redis.xrevrange(self._conv(conversation_id, "transcript"), count=limit)
        return [_entry(fields_) for _, fields_ in reversed(rows)]

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


class Turn:
    """One conversation turn under lock. Use as `async with`; `commit` is the only write."""

    def __init__(self, store: Store, inbound: Inbound, claim_key: str, claim: str, local: asyncio.Lock):
        self.store = store
        self.inbound = inbound
        self.session: Session = Session(inbound.conversation_id, inbound.channel)
        self._claim_key = claim_key
        self._claim = claim
        self._local = local
        self._lock: Lock = store.redis.lock(
            store._conv(inbound.conversation_id, "lock"),
            timeout=store.lock_timeout,
            sleep=0.01,
            blocking_timeout=store.lock_timeout * 2,
        )
        self.committed = False

    async def acquire(self) -> None:
        """Take the Redis lock (the caller holds the local one) and load the session."""
        if not await self._lock.acquire():
            raise StoreError(f"conversation {self.inbound.conversation_id} is busy")
        try:
            self.session = await self.store.load_session(self.inbound.conversation_id, self.inbound.channel)
        except BaseException:
            await self._release_lock()
            raise

    async def commit(self, session: Session, entries: Sequence[TranscriptEntry], event: dict[str, Any] | None) -> None:
        store = self.store
        cid = self.inbound.conversation_id
        token = self._lock.local.token
        token = token.decode() if isinstance(token, bytes) else token
        payload = [[e.id, str(e.sender), e.text, repr(e.ts)] for e in entries]
        try:
            await store._commit(
                keys=[store._conv(cid, "session"), store._conv(cid, "transcript"), self._claim_key, store._conv(cid, "lock")],
                args=[
                    token, self._claim, store.session_ttl, store.dedupe_ttl, store.transcript_cap,
                    json.dumps(_session_to_hash(session), ensure_ascii=False),
                    json.dumps(payload, ensure_ascii=False),
                    store.events_channel, json.dumps(event, ensure_ascii=False) if event else "",
                ],
            )
        except Exception as exc:
            raise StoreError(f"commit of {cid} failed: {exc}") from exc
        self.committed = True

    async def _release_lock(self) -> None:
        try:
            await self._lock.release()
        except LockError:
            pass  # expired meanwhile; commit would have refused anyway

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if not self.committed:
                # Give the message back so a retry is handled, not swallowed.
                await self.store._release_claim(keys=[self._claim_key], args=[self._claim])
            await self._release_lock()
        finally:
            self._local.release()


_INT_FIELDS = {"miss_count", "turns"}
_FLOAT_FIELDS = {"created_at", "updated_at"}


def _session_to_hash(session: Session) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in asdict(session).items():
        if key in ("conversation_id",) or value is None:
            continue
        out[key] = repr(value) if isinstance(value, float) else str(value)
    return out


def _session_from_hash(conversation_id: str, channel: str, raw: dict[str, str]) -> Session:
    known = {f.name for f in fields(Session)}
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
    return Session(**values)


def _entry(raw: dict[str, str]) -> TranscriptEntry:
    return TranscriptEntry(id=raw["id"], sender=Sender(raw["from"]), text=raw["text"], ts=float(raw["ts"]))

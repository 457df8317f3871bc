"""Human handoff around the atomic steps in the store: after a turn commits, tell the buyer where
they stand (assigned, queue position and wait, off hours), tell the desks what changed, and hand
queued chats to agents who have room.

Nothing here decides a conversation's fate on its own: assignment, reassignment and closing happen
inside the store's Lua scripts; this module renders what they did.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
import uuid
from collections.abc import Callable
from typing import Any

from bot import metrics, reasons
from bot.channels import pushes
from bot.config import Config
from bot.followups import FollowUps
from bot.phrasebook import Phrasebook
from bot.reports import shop_day
from bot.store import Store, stamp
from bot.types import Inbound, Sender, Session, State, TranscriptEntry

log = logging.getLogger(__name__)
PRESENCE_TTL = 5.0            # a desk socket counts as present this long after its last heartbeat (1.5 s)
DEFAULT_WAIT = 120.0          # seconds per buyer ahead, until there are real figures


class HandoffService:
    def __init__(self, config: Config, store: Store, phrasebook: Phrasebook, clock: Callable[[], float]):
        self.config = config
        self.store = store
        self.phrasebook = phrasebook
        self.clock = clock
        self.shop_clock = config.shop.clock
        self.followups = FollowUps(config, store, phrasebook, self.desk, clock)

    # ---- routing context for the Lua steps ------------------------------------------------------
    def routing(self, now: float) -> dict[str, Any]:
        return {
            "now": stamp(now),
            "timeout": self.config.handoff.first_response_timeout,
            "max_reassignments": self.config.handoff.max_reassignments,
            "members": {g: [[a.username, a.capacity] for a in self.config.members(g)] for g in self.config.group_names},
            "capacity": {a.username: a.capacity for a in self.config.agents},
            "closed": not self.shop_clock.is_open(now),
            "grace": self.config.handoff.notice_grace,
            "day": shop_day(now, self.config.shop.zone)[0],  # the report day the steps count in
        }

    def display(self, username: str | None) -> str:
        agent = self.config.agent(username or "")
        return (agent.display_name or agent.username) if agent else (username or "")

    # ---- after a turn ----------------------------------------------------------------------------
    async def after_commit(self, inbound: Inbound, session: Session, results: list[dict[str, Any]], origin: str | None) -> list[TranscriptEntry]:
        """Render what the turn's handoff steps did; returns the notices for this conversation, which
        the submitting adapter sends after the turn's replies (other sockets get them via pub/sub)."""
        cid = inbound.conversation_id
        locale = session.locale
        freed = False
        notices: list[TranscriptEntry] = []
        for r in results:
            if r.get("followup"):  # written by the same commit; now every supervisor's desk lists it
                await self.followups.announce(str(r["followup"]))
            kind, outcome = r.get("kind"), r.get("outcome")
            if kind in ("handoff", "transfer", "reassign", "pick"):
                if r.get("from"):
                    reason = {"transfer": "transfer", "reassign": "first_response_timeout"}.get(kind, kind)
                    await self.desk(r["from"], {"type": "unassigned", "conversation": cid, "reason": reason})
                    freed = True
                if outcome in ("assigned", "reassigned"):
                    pid = "system.reassigned" if outcome == "reassigned" else "system.handoff_assigned"
                    notices += await self.notify(cid, locale, pid, origin, agent=self.display(r.get("agent")))
                    await self.send_assigned(r["agent"], cid)
                elif outcome == "queued":
                    notices += await self.notify_queued(cid, locale, int(r.get("position") or 1), str(r.get("notice")),
                                                        origin=origin, reason=str(r.get("reason") or ""))
                elif outcome == "supervisor":
                    # The buyer hears nothing yet: a "notice" timer tells them after the grace period
                    # if the chat is still waiting (see commit.lua).
                    metrics.SUPERVISOR.inc()
                    log.warning("%s: %s", cid, self.phrasebook.text("system.supervisor_escalation", self.config.shop.locale))
                if kind == "reassign" and outcome != "stale":
                    metrics.REASSIGNED.labels(outcome).inc()
                if kind == "handoff" and outcome != "already":
                    metrics.HANDOFFS.labels(outcome).inc()
            elif kind == "notice" and outcome == "queued":
                notices += await self.notify_queued(cid, locale, int(r.get("position") or 1), str(r.get("notice")),
                                                    origin=origin, reason=str(r.get("reason") or ""))
            elif kind == "samples":
                metrics.observe_samples(r.get("samples") or [])
            elif kind == "rate":
                metrics.RATINGS.labels(str(r.get("score"))).inc()
            elif kind == "close" and outcome == "closed":
                if r.get("from"):
                    reason = {"timer": "idle", "unfollow": "unsubscribe"}.get(str(inbound.kind), "closed")
                    await self.desk(r["from"], {"type": "unassigned", "conversation": cid, "reason": reason})
                freed = True
        if any(r.get("kind") in ("handoff", "transfer", "reassign", "close", "pick") and r.get("outcome") not in ("already", "stale", "not_open", "kept")
               for r in results):
            await self.store.publish({"type": "queue_changed", "broadcast": True})
        if freed:
            await self.drain()
        return notices

    async def drain(self) -> None:
        """Give queued chats to agents with room; tell waiting buyers whose position improved."""
        now = self.clock()
        assigned, moved = await self.store.drain(self.routing(now))
        metrics.observe_samples(self.store.drain_samples)
        for cid, agent, _group, resumed in assigned:
            session = await self.store.load_session(cid, "")
            if resumed != "same":  # the agent the buyer last heard of is back: nothing changed for them
                pid = "system.reassigned" if resumed == "other" else "system.handoff_assigned"
                await self.notify(cid, session.locale, pid, None, agent=self.display(agent))
            await self.send_assigned(agent, cid)
        for cid, position, group in moved:
            session = await self.store.load_session(cid, "")
            notice = session.handoff.notice if session.handoff else ""
            await self.notify_queued(cid, session.locale, int(position), notice, update=True)
        if assigned or moved:
            await self.store.publish({"type": "queue_changed", "broadcast": True})

    async def notify_queued(self, cid: str, locale: str | None, position: int, notice: str,
                            update: bool = False, origin: str | None = None, reason: str = "") -> list[TranscriptEntry]:
        """Tell a queued buyer where they stand; `notice` is what the commit recorded (see queue_notice
        in lib.lua). A message left off hours is acknowledged with when the team is back."""
        if update:
            if notice != "queued":
                return []  # off hours or nobody online: the buyer was already told to leave a message
            return await self.notify(cid, locale, "system.handoff_queue_update", origin, position=str(position))
        if notice == "queued":
            return await self.notify(cid, locale, "system.handoff_queued", origin, position=str(position),
                                     wait=str(await self.estimated_wait(position)))
        left = reason == reasons.MESSAGE
        if notice == "off_hours":
            values = self.shop_clock.back_values(self.clock(), self.phrasebook.text, locale)
            return await self.notify(cid, locale, "system.message_taken_off_hours" if left else "system.handoff_off_hours", origin, **values)
        return await self.notify(cid, locale, "system.message_taken" if left else "system.handoff_nobody_online", origin)

    async def estimated_wait(self, position: int) -> int:
        """Minutes, from recent waits (handoff -> first agent reply)."""
        waits = await self.store.recent_waits()
        per_buyer = statistics.median(waits) if len(waits) >= 3 else DEFAULT_WAIT
        return max(1, math.ceil(position * per_buyer / 60))

    async def notify(self, cid: str, locale: str | None, pid: str, origin: str | None, **values: str) -> list[TranscriptEntry]:
        """Append a bot notice to the conversation and fan it out (the origin socket skips it)."""
        text = self.phrasebook.text(pid, locale, shop=self.config.shop.name, **values)
        entry = TranscriptEntry(f"n-{uuid.uuid4().hex[:12]}", Sender.BOT, text, self.clock())
        channel = cid.split(":", 1)[0]
        await self.store.append(cid, [entry], {"type": "messages", "conversation": cid, "origin": origin, "messages": [entry.to_json()]},
                                push_channel=channel if origin is None and pushes(channel) else None)
        return [entry]

    async def delivery_failed(self, cid: str, message: dict[str, Any], reason: str) -> None:
        """The platform refused a later message (e.g. WeChat's 48-hour window): tell the chat's agent."""
        handoff = await self.store.handoff_of(cid)
        if handoff and handoff.agent:
            await self.desk(handoff.agent, {"type": "error", "code": "delivery_failed", "conversation": cid,
                                            "message": f"消息未能送达买家 / not delivered: {reason}", "text": message.get("text")})

    # ---- desks -----------------------------------------------------------------------------------
    async def desk(self, agent: str, frame: dict[str, Any]) -> None:
        await self.store.publish({"type": "desk", "desk": agent, "frame": frame})

    async def send_assigned(self, agent: str, cid: str) -> None:
        payload = await self.conversation(cid)
        if payload:
            await self.desk(agent, {"type": "assigned", "conversation": payload})

    async def conversation(self, cid: str) -> dict[str, Any] | None:
        """What a desk shows for one chat: who the buyer is, the handoff, the history."""
        session = await self.store.load_session(cid, "")
        handoff = session.handoff
        history = await self.store.history(cid)
        deadline = None
        if handoff and handoff.assigned_at and handoff.first_reply_at is None:
            deadline = handoff.assigned_at + self.config.handoff.first_response_timeout
        return {
            "id": cid,
            "channel": session.channel or cid.split(":", 1)[0],
            "customer": {
                "name": session.customer_name, "locale": session.locale, "first_seen": session.created_at,
                "tags": [t for t in session.tags.split(",") if t], "past_conversations": session.cases,
                "tag": buyer_tag(cid), "page": page_of(session),
            },
            "history": [desk_message(e) for e in history],
            "assigned_at": handoff.assigned_at if handoff else None,
            "first_reply_at": handoff.first_reply_at if handoff else None,
            "first_response_deadline": deadline,
            "group": handoff.group if handoff else None,
            "state": str(session.state),
            **self.reason_view(handoff.reason if handoff else None),
            "notes": [n.to_json() for n in await self.store.notes(cid)],
        }

    def reason_view(self, reason: str | None) -> dict[str, Any]:
        """Why the chat came to a human, with the desk's label and badge (bot/reasons.py)."""
        if not reason:
            return {"reason": None, "reason_label": None, "flag": None, "flag_label": None}
        locale, flag = self.config.shop.locale, reasons.flag_of(reason)
        return {"reason": reason, "reason_label": self.phrasebook.label("reasons", reason, locale),
                "flag": flag or None, "flag_label": self.phrasebook.label("flags", flag, locale) if flag else None}

    async def snapshot(self, username: str) -> dict[str, Any]:
        """The full state a desk needs after (re)connecting."""
        now = self.clock()
        agent = self.config.agent(username)
        assert agent is not None
        status, _, chats = await self.store.agent_state(username, now)
        return {
            "type": "hello",
            "agent": {"username": agent.username, "display_name": agent.display_name or agent.username,
                      "groups": self.groups_of(username), "capacity": agent.capacity, "role": agent.role},
            "status": status,
            "shop": {"name": self.config.shop.name},
            "groups": [{"name": g, "display_name": self.config.group_display(g)} for g in self.config.group_names],
            "agents": [{"username": a.username, "display_name": a.display_name or a.username,
                        "online": (await self.store.agent_state(a.username, now))[1]} for a in self.config.agents],
            "chats": [c for c in [await self.conversation(cid) for cid in chats] if c],
            "queue": await self.queue_view(username),
            "phrases": self.quick_phrases(),
            **await self.followups.hello(username),
        }

    def groups_of(self, username: str) -> list[str]:
        agent = self.config.agent(username)
        return list(agent.groups) if agent and agent.groups else self.config.group_names

    async def queue_view(self, username: str) -> list[dict[str, Any]]:
        out = []
        for group in self.groups_of(username):
            for position, (cid, _) in enumerate(await self.store.queue(group), start=1):
                session = await self.store.load_session(cid, "")
                since = session.handoff.queued_at if session.handoff else None
                last = [e for e in await self.store.history(cid, limit=50) if e.sender is Sender.VISITOR]
                out.append({
                    "id": cid, "group": group, "channel": session.channel,
                    "customer": {"name": session.customer_name, "tag": buyer_tag(cid), "page": page_of(session)},
                    "waiting_since": since,
                    "preview": last[-1].text if last else "", "position": position,
                    # everything the buyer wrote while waiting (a message left off hours), in full
                    "messages": [e.text for e in last if since is None or e.ts >= since],
                    **self.reason_view(session.handoff.reason if session.handoff else None),
                })
        return out

    def quick_phrases(self) -> list[dict[str, Any]]:
        locale = self.config.shop.locale
        table = self.phrasebook.phrases[self.phrasebook.locale_of(locale)]
        names = self.phrasebook.categories[self.phrasebook.locale_of(locale)]
        return [
            {"category": cat, "name": name,
             "phrases": [{"id": p.id, "text": p.text} for p in table.values() if p.category == cat]}
            for cat, name in names.items()
        ]

    # ---- presence ----------------------------------------------------------------------------------
    async def socket_alive(self, username: str, socket_id: str) -> None:
        await self.store.agent_socket(username, socket_id, PRESENCE_TTL)

    async def socket_closed(self, username: str, socket_id: str) -> None:
        await self.store.agent_socket_closed(username, socket_id)
        await self.store.publish({"type": "queue_changed", "broadcast": True})

    async def set_status(self, username: str, status: str) -> None:
        await self.store.set_agent_status(username, status)
        if status == "online":
            await self.drain()

    # ---- typing indicators (ephemeral: pub/sub only, never stored) ---------------------------------
    async def buyer_typing(self, cid: str) -> None:
        """Tell the desk of the chat's agent; nobody is told while the chat is with the bot or queued."""
        handoff = await self.store.handoff_of(cid)
        if handoff and handoff.agent:
            await self.store.publish({"type": "typing", "chat": cid, "agent": handoff.agent, "from": "customer"})

    async def agent_typing(self, cid: str) -> None:
        await self.store.publish({"type": "typing", "conversation": cid, "from": "agent"})

    async def recent_buyer_texts(self, cid: str, limit: int = 3) -> list[str]:
        return [e.text for e in await self.store.history(cid, limit=20) if e.sender is Sender.VISITOR][-limit:]


def desk_message(e: TranscriptEntry) -> dict[str, Any]:
    """A transcript line as the desk protocol names it (the buyer is the "customer" there)."""
    out = e.to_json()
    out.pop("type", None)
    out.pop("buttons", None)
    if out["from"] == "visitor":
        out["from"] = "customer"
    return out


def buyer_tag(cid: str) -> str:
    """Four stable hex digits from the conversation id: anonymous buyers show as "访客 3F2A", told
    apart at a glance (the desk derives the avatar colour from the same id)."""
    return hashlib.sha1(cid.encode()).hexdigest()[:4].upper()


def page_of(session: Session) -> dict[str, str] | None:
    return {"url": session.page_url, "title": session.page_title} if session.page_url else None


def is_handed_off(session: Session) -> bool:
    return session.state in (State.QUEUED, State.WITH_AGENT)

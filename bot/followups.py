"""Supervisor follow-ups: what the bot promised a supervisor would handle (a low rating: "a supervisor
will be in touch"; a chat nobody answered after max_reassignments) reaches every supervisor's desk
and stays listed until one of them takes it.

The commit script creates a follow-up in the same atomic step as its event; this module renders it
for the desks, lists the open ones in a supervisor's hello, and lets one supervisor take it for all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.config import Config
from bot.phrasebook import Phrasebook
from bot.store import Store
from bot.types import Sender

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]  # (username, desk frame)


class FollowUps:
    def __init__(self, config: Config, store: Store, phrasebook: Phrasebook, publish: Publish, clock: Callable[[], float]):
        self.config = config
        self.store = store
        self.phrasebook = phrasebook
        self.publish = publish
        self.clock = clock

    @property
    def supervisors(self) -> list[str]:
        return [a.username for a in self.config.agents if a.is_supervisor]

    def is_supervisor(self, username: str) -> bool:
        return self.config.is_supervisor(username)

    async def view(self, raw: dict[str, str]) -> dict[str, Any]:
        """A follow-up as the desk shows it: what happened, to whom, and what the buyer said last."""
        from bot.handoff import buyer_tag  # the same short name for an anonymous buyer as on their chat

        cid = raw.get("conversation", "")
        session = await self.store.load_session(cid, "")
        said = [e.text for e in await self.store.history(cid, limit=20) if e.sender is Sender.VISITOR]
        agent = self.config.agent(raw.get("agent", ""))
        locale = self.config.shop.locale
        return {
            "id": raw.get("id"), "kind": raw.get("kind"), "label": self.phrasebook.label("followups", raw.get("kind", ""), locale),
            "conversation": cid, "channel": session.channel or cid.split(":", 1)[0],
            "customer": {"name": session.customer_name, "tag": buyer_tag(cid)},
            "agent": raw.get("agent") or None, "agent_name": (agent.display_name or agent.username) if agent else None,
            "score": int(raw["score"]) if raw.get("score", "").isdigit() else None,
            "created_at": float(raw.get("created_at") or 0), "preview": said[-1] if said else "",
            "taken_by": raw.get("taken_by") or None,
        }

    async def announce(self, followup_id: str) -> None:
        raw = await self.store.followup(followup_id)
        if raw is None:
            return
        frame = {"type": "followup", "followup": await self.view(raw)}
        for username in self.supervisors:
            await self.publish(username, frame)

    async def hello(self, username: str) -> dict[str, Any]:
        """The open follow-ups for a supervisor's hello; agents get none (and no key)."""
        if not self.is_supervisor(username):
            return {}
        return {"followups": [await self.view(raw) for raw in await self.store.open_followups()]}

    async def take(self, followup_id: str, username: str) -> str:
        """"taken" (and every supervisor's desk drops it from the list), "already" or "unknown"."""
        outcome = await self.store.take_followup(followup_id, username, self.clock())
        if outcome == "taken":
            agent = self.config.agent(username)
            frame = {"type": "followup_taken", "id": followup_id, "by": username,
                     "by_name": (agent.display_name or agent.username) if agent else username}
            for supervisor in self.supervisors:
                await self.publish(supervisor, frame)
        return outcome

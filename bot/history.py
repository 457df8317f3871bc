"""History of closed chats for the desk: search by buyer, text and date, and one case's transcript.

Scale: meant for a small shop. Cases come from sorted sets the close step keeps (per agent, per
buyer, shop-wide); a text search reads the transcripts of at most `SCAN_LIMIT` cases of the date
range, newest first. That is a few hundred Redis reads per search — fine for a handful of agents, not
a search engine.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.handoff import buyer_tag, desk_message
from bot.store import Store
from bot.textnorm import normalise
from bot.types import Case, Sender, TranscriptEntry

SCAN_LIMIT = 500
RESULT_LIMIT = 50
SNIPPET = 60


def day_range(start: str | None, end: str | None, zone: ZoneInfo) -> tuple[float, float]:
    """Unix bounds of [start, end] (YYYY-MM-DD, both inclusive, in the shop's time zone).

    Raises ValueError on a malformed date or an end before the start.
    """
    lo = datetime.combine(date.fromisoformat(start), time(), zone).timestamp() if start else 0.0
    hi = datetime.combine(date.fromisoformat(end) + timedelta(days=1), time(), zone).timestamp() if end else float("inf")
    if hi <= lo:
        raise ValueError("'to' is before 'from'")
    return lo, hi


class History:
    def __init__(self, store: Store):
        self.store = store

    async def search(self, agent: str | None, text: str = "", buyer: str = "", since: float = 0.0,
                     until: float = float("inf")) -> list[dict[str, Any]]:
        """Closed cases of `agent` (None: every agent's), newest first, matching all given criteria:
        `buyer` in the buyer's name, tag or conversation id; `text` in any line of the case."""
        needle, who = normalise(text).strip(), buyer.strip().lower()
        out: list[dict[str, Any]] = []
        for case in await self.store.closed_cases(agent, since, until, SCAN_LIMIT):
            if who:  # the cheap check first: one hash read, no transcript
                session = await self.store.load_session(case.conversation_id, "")
                if not any(who in v.lower() for v in (session.customer_name or "", buyer_tag(case.conversation_id), case.conversation_id)):
                    continue
            history = await self.store.case_history(case)
            summary = await self.summary(case, history)
            if needle:
                lines = [e for e in history if needle in normalise(e.text)]
                if not lines:
                    continue
                summary["snippet"] = _snippet(lines[0].text, lines[0].text.lower().find(text.strip().lower()))
            out.append(summary)
            if len(out) >= RESULT_LIMIT:
                break
        return out

    async def summary(self, case: Case, history: list[TranscriptEntry] | None = None) -> dict[str, Any]:
        session = await self.store.load_session(case.conversation_id, "")
        history = await self.store.case_history(case) if history is None else history
        first = next((e.text for e in history if e.sender is Sender.VISITOR), "")
        return {
            "conversation": case.conversation_id, "channel": session.channel or case.conversation_id.split(":", 1)[0],
            "customer": {"name": session.customer_name, "tag": buyer_tag(case.conversation_id)},
            "agent": case.agent, "queued_at": case.queued_at, "closed_at": case.closed_at, "case": case.last_id,
            "snippet": first[:SNIPPET],
        }

    async def cases_of(self, conversation_id: str) -> list[dict[str, Any]]:
        return [await self.summary(c) for c in await self.store.conversation_cases(conversation_id)]

    async def find(self, conversation_id: str, last_id: str) -> Case | None:
        for case in await self.store.conversation_cases(conversation_id):
            if case.last_id == last_id:
                return case
        return None

    async def case(self, case: Case) -> dict[str, Any]:
        """One closed case as the desk shows it (read-only): the summary, its lines and its notes."""
        history = await self.store.case_history(case)
        lo, hi = (history[0].ts if history else case.queued_at), (history[-1].ts if history else case.closed_at) + 0.001
        # notes carry no stream id: the case's time span picks them (to the millisecond)
        notes = [n.to_json() for n in await self.store.notes(case.conversation_id) if lo <= n.ts <= hi]
        return {**await self.summary(case, history), "history": [desk_message(e) for e in history], "notes": notes}


def _snippet(text: str, at: int) -> str:
    start = max(0, at - SNIPPET // 3) if at >= 0 else 0
    return ("…" if start else "") + text[start:start + SNIPPET]

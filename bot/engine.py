"""The engine: one pipeline for every event.

    adapter -> submit(Inbound) -> claim + lock + load (store) -> router -> commit (store) -> Outcome

Buyer messages, agent actions from the desk and timer ticks all take this path, so locking,
transcript, timers and notifications live in one place. The adapter that submitted the event gets
the replies back (so WeChat can answer inside its HTTP response); every process also receives the
committed event over pub/sub for the other open sockets and the desks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot import metrics
from bot.channels import pushes
from bot.reports import ReportMarks
from bot.router import Context, Router
from bot.store import NotAssigned, Store, StoreBusy, stamp
from bot.textnorm import detect_locale
from bot.types import Inbound, Outcome, Sender, Session, TranscriptEntry

log = logging.getLogger(__name__)
AfterCommit = Callable[[Inbound, Session, list[dict[str, Any]], str | None], Awaitable[list[TranscriptEntry]]]


class Engine:
    def __init__(
        self,
        store: Store,
        router: Router,
        default_locale: str = "zh-CN",
        clock: Callable[[], float] = time.time,
        routing: Callable[[float], dict[str, Any]] | None = None,
        after_commit: AfterCommit | None = None,
        max_in_flight: int = 1000,
        reports: ReportMarks | None = None,
    ):
        self.store = store
        self.router = router
        self.default_locale = default_locale
        self.clock = clock
        self.routing = routing or (lambda now: {"now": stamp(now), "timeout": 60, "max_reassignments": 3, "members": {}})
        self.after_commit = after_commit
        # Back-pressure: beyond this many turns in progress in this process, a new one is refused at
        # once with StoreBusy (the buyer is asked to wait a moment and the client resends) instead of
        # queueing without bound.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.reports = reports

    async def submit(self, inbound: Inbound, origin: str | None = None) -> Outcome:
        """Handle one event exactly once. A duplicate (same message id) returns no replies."""
        if self.in_flight >= self.max_in_flight:
            metrics.BUSY.inc()
            raise StoreBusy(f"{self.in_flight} turns in progress")
        self.in_flight += 1
        started, out = time.perf_counter(), None
        try:
            out = await self._submit(inbound, origin)
            return out
        finally:
            self.in_flight -= 1
            _log_turn(inbound, out, time.perf_counter() - started)

    async def _submit(self, inbound: Inbound, origin: str | None) -> Outcome:
        started = time.perf_counter()
        turn = await self.store.begin_turn(inbound)
        if isinstance(turn, str):
            metrics.DUPLICATES.labels(inbound.channel).inc()
            return Outcome(replies=(), duplicate=True, in_progress=turn == "pending")
        async with turn:
            now = self.clock()
            session = turn.session
            locale = self._locale(inbound, session.locale)
            changes: dict[str, object] = {"created_at": now} if session.created_at == 0.0 else {}
            if inbound.from_buyer:
                changes.update(customer_name=inbound.customer.name or session.customer_name, locale=locale,
                               last_buyer_at=now)
                if inbound.page_url:
                    changes.update(page_url=inbound.page_url, page_title=inbound.page_title)
            if changes:
                session = session.evolve(**changes)  # one copy, not one per change
            ctx = Context(inbound=inbound, session=session, now=now, locale=locale)
            try:
                result = self.router.route(ctx)
            except Exception:
                metrics.TURN_ERRORS.inc()
                raise
            if result.error:
                return Outcome(replies=(), handler=result.handler, error=result.error)
            final = (result.session or ctx.session).evolve(turns=session.turns + 1, updated_at=now)
            entries: list[TranscriptEntry] = []
            if inbound.from_buyer:
                entries.append(TranscriptEntry(inbound.message_id, Sender.VISITOR, inbound.text, now, image=inbound.image))
            replies = tuple(
                TranscriptEntry(f"{inbound.message_id}~{i}", r.sender, r.text, now,
                                agent=inbound.agent if r.sender is Sender.AGENT else None, buttons=r.buttons, image=r.image)
                for i, r in enumerate(result.replies)
            )
            entries.extend(replies)
            event = {
                "type": "messages",
                "conversation": inbound.conversation_id,
                "channel": final.channel,
                "origin": origin,
                "messages": [e.to_json() for e in entries],
            } if entries else None
            # Replies go back with the request when its adapter takes them (origin set: the widget's
            # socket, WeChat's passive reply, WeCom, which queues them as one text); on API channels
            # everything else (Telegram replies, agent replies, timer notices) is committed to the
            # outbox with the turn.
            push = replies if origin is None and pushes(final.channel) else ()
            report = None
            if self.reports:
                final, report = self.reports.mark(inbound, turn.session, final, result, now)
            try:
                results = await turn.commit(final, entries, event, result.effects,
                                            self.routing(now) if result.effects else None, push, report)
            except NotAssigned as exc:
                return Outcome(replies=(), handler=result.handler, error=str(exc).lower())
        if inbound.from_buyer:
            metrics.MESSAGES.labels(inbound.channel).inc()
        metrics.HANDLED.labels(result.handler).inc()
        if "faq" in result.handler.split("+"):
            metrics.FAQ.labels("answered" if result.intent else "missed").inc()
            outcome = "answered" if result.intent else "suggested" if result.meta.get("suggestions") else "refused"
            metrics.UNDERSTANDING.labels(outcome).inc()
        metrics.TURN_SECONDS.observe(time.perf_counter() - started)
        if results and self.after_commit:
            try:
                replies += tuple(await self.after_commit(inbound, final, results, origin))
            except Exception:
                # The turn is committed; its replies must still reach the buyer. Desks resync on
                # reconnect and the periodic drain hands out anything left queued.
                log.exception("after-commit notices failed for %s", inbound.conversation_id)
        return Outcome(replies=replies, handler=result.handler)

    def _locale(self, inbound: Inbound, session_locale: str | None) -> str:
        """Answer in the script/language of this message; fall back to what we know of the buyer."""
        text = inbound.text
        if inbound.from_buyer and any(ch.isalpha() for ch in text):
            return detect_locale(text)
        return session_locale or inbound.customer.locale or self.default_locale


def _log_turn(inbound: Inbound, out: Outcome | None, seconds: float) -> None:
    """One structured line per handled event (bot.logs renders it as JSON or key=value)."""
    if out is None:
        outcome = "failed"
    elif out.duplicate:
        outcome = "duplicate"
    elif out.error:
        outcome = f"refused:{out.error}"
    else:
        outcome = "replied" if out.replies else "silent"
    log.info("handled %s", inbound.kind, extra={
        "conversation": inbound.conversation_id, "channel": inbound.channel or None, "event": str(inbound.kind),
        "handler": out.handler if out else None, "outcome": outcome, "latency_ms": round(seconds * 1000, 1)})

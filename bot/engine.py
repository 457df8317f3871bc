"""The engine: one pipeline for every event.

    adapter -> submit(Inbound) -> claim + lock + load (store) -> router -> commit (store) -> Outcome

The adapter that submitted the event gets the replies back (so WeChat can answer inside its HTTP
response); every process also receives the committed event over pub/sub for other open sockets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot import metrics
from bot.router import Context, Router
from bot.store import Store
from bot.textnorm import detect_locale
from bot.types import Inbound, Outcome, Sender, TranscriptEntry


class Engine:
    def __init__(self, store: Store, router: Router, default_locale: str = "zh-CN", clock: Callable[[], float] = time.time):
        self.store = store
        self.router = router
        self.default_locale = default_locale
        self.clock = clock

    async def submit(self, inbound: Inbound, origin: str | None = None) -> Outcome:
        """Handle one event exactly once. A duplicate (same message id) returns no replies."""
        started = time.perf_counter()
        turn = await self.store.begin_turn(inbound)
        if turn is None:
            metrics.DUPLICATES.labels(inbound.channel).inc()
            return Outcome(replies=(), duplicate=True)
        async with turn:
            now = self.clock()
            session = turn.session
            if session.created_at == 0.0:
                session = session.evolve(created_at=now)
            name = inbound.customer.name or session.customer_name
            session = session.evolve(customer_name=name, locale=session.locale or inbound.customer.locale)
            ctx = Context(inbound=inbound, session=session, now=now, locale=self._locale(inbound, session.locale))
            try:
                result = self.router.route(ctx)
            except Exception:
                metrics.TURN_ERRORS.inc()
                raise
            final = (result.session or ctx.session).evolve(turns=session.turns + 1, updated_at=now)
            entries: list[TranscriptEntry] = []
            if inbound.kind != "event":
                entries.append(TranscriptEntry(inbound.message_id, Sender.VISITOR, inbound.text, now))
            replies = tuple(
                TranscriptEntry(f"{inbound.message_id}~{i}", r.sender, r.text, now) for i, r in enumerate(result.replies)
            )
            entries.extend(replies)
            event = {
                "type": "messages",
                "conversation": inbound.conversation_id,
                "channel": inbound.channel,
                "origin": origin,
                "messages": [e.to_json() for e in entries],
            }
            await turn.commit(final, entries, event)
        metrics.MESSAGES.labels(inbound.channel).inc()
        metrics.HANDLED.labels(result.handler).inc()
        if "faq" in result.handler.split("+"):
            metrics.FAQ.labels("answered" if result.intent else "missed").inc()
        metrics.TURN_SECONDS.observe(time.perf_counter() - started)
        return Outcome(replies=replies, handler=result.handler)

    def _locale(self, inbound: Inbound, session_locale: str | None) -> str:
        """Answer in the script/language of this message; fall back to what we know of the buyer."""
        text = inbound.text
        if any(ch.isalpha() for ch in text):
            return detect_locale(text)
        return session_locale or inbound.customer.locale or self.default_locale

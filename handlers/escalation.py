"""Escalation to a human: on request, or on a complaint or dispute — soothe first, then hand over.

What the buyer means comes from the understanding module (intents by meaning, with negation:
"不用转人工" is no request). Disputes are classed the way shops do (product, logistics, service
attitude, bad-review threats); each class has its soothing phrase and routes to its own group.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Effect, Kind, Reply, Result, State
from bot.understanding import Understanding


class Escalation:
    name = "escalation"

    def __init__(self, phrasebook: Phrasebook, understanding: Understanding, route: Callable[[str], str],
                 clock: ShopClock | None = None):
        self.phrasebook = phrasebook
        self.understanding = understanding
        self.route = route
        self.clock = clock

    def classify(self, text: str) -> str | None:
        """"request", a dispute class, or None."""
        return self.understanding.read(text).handoff

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.TEXT or ctx.session.state in (State.QUEUED, State.WITH_AGENT):
            return None
        reason = self.classify(ctx.inbound.text)
        if reason is None:
            return None
        pid = "system.handoff_request" if reason == "request" else f"system.soothe_{reason}"
        replies: tuple[Reply, ...] = (Reply(self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid),)
        if reason == "request" and self.clock is not None and not self.clock.is_open(ctx.now):
            # Off hours "connecting you now" would be contradicted at once: the notice after the commit
            # (an agent on duty after all, or when the team is back) is the whole answer.
            replies = ()
        session = ctx.session.evolve(state=State.BOT, miss_count=0, offered="")
        return Result(replies=replies, session=session, intent=f"handoff:{reason}",
                      effects=(Effect("handoff", group=self.route(reason), reason=reason),))

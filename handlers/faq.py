"""FAQ quick replies: the shop's standard answer when the matcher is confident, never a guess.

Unsure: ask politely to rephrase and offer a human; after `miss_limit` misses in a row, hand the
chat to a human. Off hours, a message the bot cannot answer is a message left for the staff: it
waits in the queue for the first agent in (the notice after the commit acknowledges it). The miss
count and the last intent live in the session.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.faq import FaqMatcher
from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from bot.reasons import MESSAGE
from bot.router import Context
from bot.store import stamp
from bot.types import Effect, Reply, Result, State


class FaqAnswer:
    name = "faq"

    def __init__(self, matcher: FaqMatcher, phrasebook: Phrasebook, miss_limit: int, route: Callable[[str], str] | None = None,
                 clock: ShopClock | None = None):
        self.matcher = matcher
        self.phrasebook = phrasebook
        self.miss_limit = miss_limit
        self.route = route  # None: no human handoff, the bot only offers one
        self.clock = clock  # None: no business hours, every miss counts toward miss_limit

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != "text" or not ctx.inbound.text.strip():
            return None
        match = self.matcher.match(ctx.inbound.text)
        state = State.BOT if ctx.session.state is State.NEW else ctx.session.state
        meta = {"score": round(match.score, 3)}
        if match.entry is not None:
            session = ctx.session.evolve(state=state, miss_count=0, last_intent=match.entry.id)
            reply = Reply(text=match.entry.answer_for(ctx.locale), phrase=f"faq:{match.entry.id}")
            return Result(replies=(reply,), session=session, intent=match.entry.id, meta=meta)
        if self.route is not None and self.clock is not None and not self.clock.is_open(ctx.now):
            session = ctx.session.evolve(state=state, miss_count=0, last_intent=None, message_ack=stamp(ctx.now))
            return Result(session=session, meta=meta, intent=None,
                          effects=(Effect("handoff", group=self.route(MESSAGE), reason=MESSAGE),))
        misses = ctx.session.miss_count + 1
        effects: tuple[Effect, ...] = ()
        if misses < self.miss_limit:
            pid = "system.rephrase"
        elif self.route is None:
            pid = "system.offer_human"
        else:
            pid, misses = "system.handoff_misses", 0
            effects = (Effect("handoff", group=self.route("misses"), reason="misses"),)
        session = ctx.session.evolve(state=state, miss_count=misses, last_intent=None)
        reply = Reply(text=self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        return Result(replies=(reply,), session=session, intent=None, meta=meta, effects=effects)

"""FAQ quick replies: the shop's standard answer when the matcher is confident, never a guess.

Unsure: ask politely to rephrase and offer a human; after `miss_limit` misses in a row, offer the
human more clearly. The miss count and the last intent live in the session (escalation reads them).
"""

from __future__ import annotations

from bot.faq import FaqMatcher
from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Reply, Result, State


class FaqAnswer:
    name = "faq"

    def __init__(self, matcher: FaqMatcher, phrasebook: Phrasebook, miss_limit: int):
        self.matcher = matcher
        self.phrasebook = phrasebook
        self.miss_limit = miss_limit

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
        misses = ctx.session.miss_count + 1
        pid = "system.offer_human" if misses >= self.miss_limit else "system.rephrase"
        session = ctx.session.evolve(state=state, miss_count=misses, last_intent=None)
        reply = Reply(text=self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        return Result(replies=(reply,), session=session, intent=None, meta=meta)

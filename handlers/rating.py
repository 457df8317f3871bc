"""Satisfaction rating after a close: a reply of 1-5 (a button, or typed) is stored once. A low one
is apologised for and, in the same commit, becomes a follow-up on the supervisors' desks (the
apology promises that a supervisor will be in touch)."""

from __future__ import annotations

import unicodedata

from bot.phrasebook import Phrasebook
from bot.reasons import LOW_RATING
from bot.router import Context
from bot.types import Effect, Kind, Reply, Result, State


LOW = 2  # ratings up to this are "unsatisfied"


class Rating:
    name = "rating"

    def __init__(self, phrasebook: Phrasebook):
        self.phrasebook = phrasebook

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.TEXT or not ctx.session.rating_pending:
            return None
        text = unicodedata.normalize("NFKC", ctx.inbound.text).strip().rstrip("分星").strip()
        if text not in {"1", "2", "3", "4", "5"}:
            # Moved on without rating: forget the question and let the other handlers answer.
            return Result(session=ctx.session.evolve(rating_pending="", state=State.BOT), final=False)
        score = int(text)
        pid = "system.rating_sorry" if score <= LOW else "system.rating_thanks"
        reply = Reply(self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        session = ctx.session.evolve(rating_pending="", rating=text, state=State.BOT)
        effects: tuple[Effect, ...] = (Effect("rate", score=score),)
        if score <= LOW:
            effects += (Effect("followup", reason=LOW_RATING, score=score, agent=ctx.session.last_agent or None),)
        return Result(replies=(reply,), session=session, effects=effects, intent="rating")

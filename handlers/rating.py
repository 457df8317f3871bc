"""Satisfaction rating after a close: a reply of 1-5 (a button, or typed) is stored once."""

from __future__ import annotations

import unicodedata

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Effect, Kind, Reply, Result, State


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
        pid = "system.rating_sorry" if score <= 2 else "system.rating_thanks"
        reply = Reply(self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        session = ctx.session.evolve(rating_pending="", rating=text, state=State.BOT)
        return Result(replies=(reply,), session=session, effects=(Effect("rate", score=score),), intent="rating")

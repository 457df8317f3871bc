"""Fallback: the last handler. Anything nobody else took (a picture, a sticker, an empty message)
gets a friendly request to write it in words, with a human on offer."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Reply, Result, State


class Fallback:
    name = "fallback"

    def __init__(self, phrasebook: Phrasebook):
        self.phrasebook = phrasebook

    def handle(self, ctx: Context) -> Result:
        state = State.BOT if ctx.session.state is State.NEW else ctx.session.state
        pid = "system.unsupported"
        reply = Reply(text=self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        return Result(replies=(reply,), session=ctx.session.evolve(state=state))

"""Greeting: a warm welcome at once on the first message, aware of business hours.

A bare greeting (在吗 / 你好 / hi) is answered on its own; a first message that already carries a
question gets the welcome line and passes on, so the FAQ answers it in the same turn.
"""

from __future__ import annotations

from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.textnorm import normalise
from bot.types import Kind, Reply, Result, State


class Greeting:
    name = "greeting"

    def __init__(self, phrasebook: Phrasebook, clock: ShopClock, shop_name: str):
        self.phrasebook = phrasebook
        self.clock = clock
        self.shop_name = shop_name
        words = {normalise(w).replace(" ", "") for w in phrasebook.keywords.get("greetings", ())}
        self._greetings = sorted((w for w in words if w), key=len, reverse=True)

    def is_bare_greeting(self, text: str) -> bool:
        rest = normalise(text).replace(" ", "")
        if not rest:
            return False
        for word in self._greetings:
            rest = rest.replace(word, "")
        return not rest

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind == Kind.FOLLOW:
            return Result(replies=(self.welcome(ctx),), session=ctx.session.evolve(state=State.BOT), intent="greeting")
        if ctx.inbound.kind != Kind.TEXT:
            return None
        bare = self.is_bare_greeting(ctx.inbound.text)
        if not ctx.session.is_new:
            if not bare:
                return None
            reply = self._phrase("system.greeting_again", ctx)
            return Result(replies=(reply,), intent="greeting")
        session = ctx.session.evolve(state=State.BOT)
        return Result(replies=(self.welcome(ctx),), session=session, intent="greeting", final=bare)

    def welcome(self, ctx: Context) -> Reply:
        open_now = self.clock.is_open(ctx.now)
        pid = "system.welcome" if open_now else "system.welcome_off_hours"
        if ctx.session.customer_name:
            pid += "_named"
        return self._phrase(pid, ctx, open_now)

    def _phrase(self, pid: str, ctx: Context, open_now: bool = True) -> Reply:
        values = {"shop": self.shop_name, "name": ctx.session.customer_name or ""}
        if not open_now:
            values |= self.clock.back_values(ctx.now, self.phrasebook.text, ctx.locale)
        return Reply(text=self.phrasebook.text(pid, ctx.locale, **values), phrase=pid)

"""Small talk — thanks, ok, bye, praise, a greeting inside the conversation, a 👍 — answered warmly.

Never a miss (so three 谢谢 in a row never hand the chat over) and never a reason to escalate.
"""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Kind, Reply, Result, State
from bot.understanding import Understanding


class SmallTalk:
    name = "smalltalk"

    def __init__(self, phrasebook: Phrasebook, understanding: Understanding):
        self.phrasebook = phrasebook
        self.understanding = understanding

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.TEXT:
            return None
        reading = self.understanding.read(ctx.inbound.text)
        if not reading.small_talk:
            return None
        pid = f"system.smalltalk_{reading.intent}"
        state = State.BOT if ctx.session.state is State.NEW else ctx.session.state
        reply = Reply(self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        return Result(replies=(reply,), session=ctx.session.evolve(state=state), intent=f"smalltalk:{reading.intent}")

"""The buyer picks one of the offered "您是不是想问" entries: a button, or a reply of 1/2/3.

The offer lives in the session (`offered`: FAQ ids, best first). Anything else than a pick clears
the offer and lets the other handlers read the message as usual. A pick is answered while the chat
waits in the queue (a message left off hours), but never once an agent has the chat.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from bot.faq import FaqEntry
from bot.router import Context
from bot.types import Kind, Reply, Result, State
from handlers.faq import label_for


class Choice:
    name = "choice"

    def __init__(self, entries: Mapping[str, FaqEntry]):
        self.entries = entries

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.TEXT or not ctx.session.offered or ctx.session.state is State.WITH_AGENT:
            return None
        offered = [self.entries[i] for i in ctx.session.offered.split(",") if i in self.entries]
        picked = _pick(ctx.inbound.text, offered, ctx.locale)
        if picked is None:
            return Result(session=ctx.session.evolve(offered=""), final=False)
        state = State.BOT if ctx.session.state is State.NEW else ctx.session.state
        session = ctx.session.evolve(state=state, offered="", miss_count=0, last_intent=picked.id)
        reply = Reply(text=picked.answer_for(ctx.locale), phrase=f"faq:{picked.id}")
        return Result(replies=(reply,), session=session, intent=picked.id, meta={"decision": "chosen"})


def _pick(text: str, offered: list[FaqEntry], locale: str) -> FaqEntry | None:
    """A number of the list (1-3, full-width too, "第2个", "2."), or the exact label of a button."""
    raw = unicodedata.normalize("NFKC", text).strip()
    digits = raw.strip("第个條条号號.。)）、 ")
    if digits.isdigit() and 1 <= int(digits) <= len(offered):
        return offered[int(digits) - 1]
    for entry in offered:
        if raw == label_for(entry, locale) or raw in entry.questions:
            return entry
    return None

"""FAQ quick replies: the shop's standard answer when understanding is confident, never a guess.

Unsure but with plausible entries: offer up to three as "您是不是想问：" (buttons where the channel
has them, a numbered list elsewhere; handlers.choice answers the pick). Nothing plausible: ask
politely to rephrase and offer a human; after `miss_limit` misses in a row, hand the chat over.
Off hours, a message the bot cannot answer is a message left for the staff: it waits in the queue
for the first agent in (the notice after the commit acknowledges it). The miss count, the last
intent and the offered entries live in the session.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.faq import FaqEntry
from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from bot.reasons import MESSAGE
from bot.router import Context
from bot.store import stamp
from bot.textnorm import to_traditional
from bot.types import Effect, Reply, Result, Session, State
from bot.understanding import Understanding


class FaqAnswer:
    name = "faq"

    def __init__(self, understanding: Understanding, phrasebook: Phrasebook, miss_limit: int,
                 route: Callable[[str], str] | None = None, clock: ShopClock | None = None):
        self.understanding = understanding
        self.phrasebook = phrasebook
        self.miss_limit = miss_limit
        self.route = route  # None: no human handoff, the bot only offers one
        self.clock = clock  # None: no business hours, every miss counts toward miss_limit

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != "text" or not ctx.inbound.text.strip():
            return None
        reading = self.understanding.read(ctx.inbound.text)
        state = State.BOT if ctx.session.state is State.NEW else ctx.session.state
        meta: dict[str, object] = {"score": round(reading.score, 3), "decision": reading.decision,
                                   "suggestions": [e.id for e in reading.suggestions]}
        if reading.answer is not None:
            session = ctx.session.evolve(state=state, miss_count=0, last_intent=reading.answer.id, offered="")
            reply = Reply(text=reading.answer.answer_for(ctx.locale), phrase=f"faq:{reading.answer.id}")
            return Result(replies=(reply,), session=session, intent=reading.answer.id, meta=meta)
        left = self.route is not None and self.clock is not None and not self.clock.is_open(ctx.now)
        if reading.suggestions:
            name = ctx.session.customer_name or ""
            buttons = tuple((label_for(e, ctx.locale), str(n)) for n, e in enumerate(reading.suggestions, 1))
            reply = Reply(self.phrasebook.text("system.did_you_mean", ctx.locale, name=name),
                          phrase="system.did_you_mean", buttons=buttons)
            session = ctx.session.evolve(state=state, offered=",".join(e.id for e in reading.suggestions))
            if not left:
                return Result(replies=(reply,), session=session, intent=None, meta=meta)
            # Off hours the offer may answer it, and the message is also left for the staff.
            return self._leave_message(ctx, session, meta, (reply,))
        if left:
            return self._leave_message(ctx, ctx.session.evolve(state=state, offered=""), meta, ())
        return self.miss(ctx, state, meta)

    def _leave_message(self, ctx: Context, session: Session, meta: dict[str, object], replies: tuple[Reply, ...]) -> Result:
        """Off hours: the message waits in its group's queue for the first agent in (acknowledged after the commit)."""
        assert self.route is not None
        session = session.evolve(miss_count=0, last_intent=None, message_ack=stamp(ctx.now))
        return Result(replies=replies, session=session, meta=meta, intent=None,
                      effects=(Effect("handoff", group=self.route(MESSAGE), reason=MESSAGE),))

    def miss(self, ctx: Context, state: State, meta: dict[str, object]) -> Result:
        misses = ctx.session.miss_count + 1
        effects: tuple[Effect, ...] = ()
        if misses < self.miss_limit:
            pid = "system.rephrase"
        elif self.route is None:
            pid = "system.offer_human"
        else:
            pid, misses = "system.handoff_misses", 0
            effects = (Effect("handoff", group=self.route("misses"), reason="misses"),)
        session = ctx.session.evolve(state=state, miss_count=misses, last_intent=None, offered="")
        reply = Reply(text=self.phrasebook.text(pid, ctx.locale, name=ctx.session.customer_name or ""), phrase=pid)
        return Result(replies=(reply,), session=session, intent=None, meta=meta, effects=effects)


def label_for(entry: FaqEntry, locale: str) -> str:
    """How a suggestion reads to the buyer: a question of the entry in the buyer's language."""
    lower = locale.lower()
    if lower.startswith("en"):
        for q in entry.questions:
            if q.isascii():
                return q
    chinese = next((q for q in entry.questions if not q.isascii()), entry.questions[0])
    if lower.startswith(("zh-tw", "zh-hk", "zh-mo", "zh-hant")):
        return to_traditional(chinese)
    return chinese

"""Escalation to a human: on request, or on a complaint or dispute — soothe first, then hand over.

Disputes are classed the way shops do (product, logistics, service attitude, bad-review threats)
and each class routes to its own group. Keywords live in the phrasebook.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.hours import ShopClock
from bot.phrasebook import Phrasebook
from bot.reasons import DISPUTES
from bot.router import Context
from bot.textnorm import normalise
from bot.types import Effect, Kind, Reply, Result, State

CLASSES = DISPUTES


class Escalation:
    name = "escalation"

    def __init__(self, phrasebook: Phrasebook, route: Callable[[str], str], clock: ShopClock | None = None):
        self.phrasebook = phrasebook
        self.route = route
        self.clock = clock
        kw = phrasebook.keywords
        self._words = {
            "request": _prepare(kw.get("human_request", ())),
            **{c: _prepare(kw.get(f"dispute_{c}" if c != "bad_review" else "bad_review", ())) for c in CLASSES},
        }

    def classify(self, text: str) -> str | None:
        """"request", a dispute class, or None."""
        norm = normalise(text).replace(" ", "")
        spaced = f" {normalise(text)} "
        for reason in (*CLASSES, "request"):
            if any((w in spaced) if w.startswith(" ") else (w in norm) for w in self._words[reason]):
                return reason
        return None

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
        session = ctx.session.evolve(state=State.BOT, miss_count=0)
        return Result(replies=replies, session=session, intent=f"handoff:{reason}",
                      effects=(Effect("handoff", group=self.route(reason), reason=reason),))


def _prepare(words: tuple[str, ...]) -> tuple[str, ...]:
    """Latin keywords match whole words (padded with spaces); Chinese ones match as substrings."""
    out = []
    for w in words:
        n = normalise(w)
        if not n:
            continue
        out.append(f" {n} " if n.isascii() else n.replace(" ", ""))
    return tuple(out)

"""Timer ticks: first-response timeout, idle close, and the notice to a re-queued buyer after the
grace period.

A timer names the exact assignment (or buyer message) it was set for; when the chat has moved on,
the tick does nothing. The commit re-checks atomically.
"""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.store import stamp
from bot.types import Effect, Kind, Reply, Result, State


class TimerTick:
    name = "timer"

    def __init__(self, phrasebook: Phrasebook):
        self.phrasebook = phrasebook

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.TIMER:
            return None
        kind, _, rest = ctx.inbound.text.partition("|")
        handoff = ctx.session.handoff
        if kind == "frt":
            agent, version, *_ = (rest.split("|") + ["", ""])[:3]
            if handoff and handoff.agent == agent and handoff.version == version and handoff.first_reply_at is None:
                return Result(effects=(Effect("reassign", agent=agent, version=version),), intent="first_response_timeout")
        elif kind == "notice":
            if handoff is not None and handoff.state is State.QUEUED and handoff.notice == "pending":
                return Result(effects=(Effect("notice", version=rest),), intent="queue_notice")
        elif kind == "idle":
            if handoff is not None and handoff.state is State.WITH_AGENT and stamp(ctx.session.last_buyer_at) == rest:
                reply = Reply(self.phrasebook.text("system.idle_closed", ctx.locale, name=ctx.session.customer_name or ""),
                              phrase="system.idle_closed")
                session = ctx.session.evolve(state=State.CLOSED, cases=ctx.session.cases + 1)
                return Result(replies=(reply,), session=session, effects=(Effect("close", reason="idle"),), intent="idle")
        return Result(intent="stale_timer")

"""Agent actions from the desk (reply, close, transfer, pick from the queue) as turns of the conversation.

The handler checks ownership against the session it was given; the commit checks it again
atomically, so a late reply after a reassignment is refused even in a race with the timer.
"""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.types import Effect, Kind, Reply, Result, Sender, State

RATING_BUTTONS = ("5", "4", "3", "2", "1")


class AgentAction:
    name = "agent"

    def __init__(self, phrasebook: Phrasebook, group_display: dict[str, str]):
        self.phrasebook = phrasebook
        self.group_display = group_display

    def handle(self, ctx: Context) -> Result | None:
        kind, agent = ctx.inbound.kind, ctx.inbound.agent
        if kind not in (Kind.AGENT_REPLY, Kind.AGENT_CLOSE, Kind.AGENT_TRANSFER, Kind.AGENT_PICK):
            return None
        handoff = ctx.session.handoff
        if kind == Kind.AGENT_PICK:
            # capacity, presence and group are checked again atomically at commit
            if handoff is None or handoff.state is not State.QUEUED:
                return Result(record_message=False, error="not_queued")
            return Result(effects=(Effect("pick", agent=agent),))
        if handoff is None or handoff.state is not State.WITH_AGENT or handoff.agent != agent:
            return Result(record_message=False, error="not_assigned")
        if kind == Kind.AGENT_REPLY:
            reply = Reply(ctx.inbound.text, sender=Sender.AGENT, image=ctx.inbound.image)
            return Result(replies=(reply,), effects=(Effect("first_reply", agent=agent),))
        if kind == Kind.AGENT_CLOSE:
            values = {"name": ctx.session.customer_name or ""}
            buttons = tuple((self.phrasebook.text(f"system.rate_{n}", ctx.locale), n) for n in RATING_BUTTONS)
            reply = Reply(self.phrasebook.text("system.closed_rating", ctx.locale, **values), phrase="system.closed_rating", buttons=buttons)
            session = ctx.session.evolve(state=State.CLOSED, rating_pending="1", cases=ctx.session.cases + 1)
            return Result(replies=(reply,), session=session, effects=(Effect("close", agent=agent, reason="closed"),))
        target = ctx.inbound.target or ""
        kind_, _, name = target.partition(":")
        if kind_ == "agent":
            return Result(effects=(Effect("transfer", agent=agent, target_agent=name),))
        group = self.group_display.get(name, name)
        reply = Reply(self.phrasebook.text("system.transferred", ctx.locale, group=group), phrase="system.transferred")
        return Result(replies=(reply,), effects=(Effect("transfer", agent=agent, group=name),))

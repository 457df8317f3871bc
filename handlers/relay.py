"""While a human owns the chat (queued or with an agent) the bot stays silent: the buyer's message
is recorded, goes to the desk, and (with an agent) re-arms the idle timer. A buyer waiting off hours
or with nobody online gets one acknowledgement of the message they leave, then silence."""

from __future__ import annotations

from bot.phrasebook import Phrasebook
from bot.router import Context
from bot.store import stamp
from bot.types import Effect, Reply, Result, State

LEAVE_A_MESSAGE = ("off_hours", "nobody_online")  # notices that invited the buyer to leave a message


class HumanOwned:
    name = "relay"

    def __init__(self, idle_close: int, phrasebook: Phrasebook):
        self.idle_close = idle_close
        self.phrasebook = phrasebook

    def handle(self, ctx: Context) -> Result | None:
        if not ctx.inbound.from_buyer or ctx.session.state not in (State.QUEUED, State.WITH_AGENT):
            return None
        # Only a chat an agent is working on can go idle: a queued buyer (a message left off hours)
        # waits for the first agent, however long that takes.
        effects = (idle_timer(ctx, self.idle_close),) if ctx.session.state is State.WITH_AGENT else ()
        session = ctx.session.evolve(last_buyer_at=ctx.now)
        handoff = ctx.session.handoff
        if ctx.session.state is State.QUEUED and handoff and handoff.notice in LEAVE_A_MESSAGE:
            wait = stamp(handoff.queued_at)
            if ctx.session.message_ack != wait:
                reply = Reply(self.phrasebook.text("system.message_taken", ctx.locale, name=ctx.session.customer_name or ""),
                              phrase="system.message_taken")
                return Result(replies=(reply,), session=session.evolve(message_ack=wait), intent="message_taken")
        return Result(session=session, effects=effects)


def idle_timer(ctx: Context, idle_close: int) -> Effect:
    """The idle-close timer for the buyer's message of this turn (a newer message supersedes it)."""
    member = f"idle|{ctx.inbound.conversation_id}|{stamp(ctx.now)}"
    return Effect("timer", member=member, due=ctx.now + idle_close)

"""The buyer unfollowed the account: close an open handoff quietly (the buyer can no longer be
messaged) so the agent's desk frees the chat."""

from __future__ import annotations

from bot.router import Context
from bot.types import Effect, Kind, Result, State


class Unfollow:
    name = "unfollow"

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.UNFOLLOW:
            return None
        effects = (Effect("close", reason="unsubscribe"),) if ctx.session.handoff is not None else ()
        return Result(session=ctx.session.evolve(state=State.CLOSED, rating_pending=""), effects=effects, intent="unfollow")

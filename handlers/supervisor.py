"""A supervisor takes over a chat, or hands it to another agent, whoever holds it now.

The handler sees the session under the conversation lock; the commit re-checks that the owner is
still the one seen here, so a reply or a timer racing the supervisor cannot leave two owners.
"""

from __future__ import annotations

from bot.router import Context
from bot.types import Effect, Kind, Result


class SupervisorAction:
    name = "supervisor"

    def handle(self, ctx: Context) -> Result | None:
        if ctx.inbound.kind != Kind.SUPERVISOR_ASSIGN:
            return None
        handoff = ctx.session.handoff
        _, _, target = (ctx.inbound.target or "").partition(":")
        if handoff is None:
            return Result(record_message=False, error="not_open")
        if handoff.agent == target:
            return Result(record_message=False, error="same_agent")
        # Taking a chat over is not limited by the supervisor's capacity; handing it to an agent is.
        reason = "take_over" if target == ctx.inbound.agent else "supervisor"
        return Result(effects=(Effect("transfer", agent=handoff.agent, target_agent=target, reason=reason),),
                      intent=f"supervisor:{reason}")

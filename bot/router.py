"""The router: an ordered list of handlers, the first one that matches decides (aiogram-style).

Handlers are small, pure and synchronous: they look at the event and the session and return a
Result, or None to pass. They never do I/O; the engine commits what they decide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence

from bot.types import Inbound, Result, Session


@dataclass(frozen=True)
class Context:
    """What a handler may look at for one turn."""

    inbound: Inbound
    session: Session
    now: float     # unix time of the turn (the engine's clock, injectable in tests)
    locale: str    # the locale to answer in: the buyer's script/language for this message


class Handler(Protocol):
    name: str

    def handle(self, ctx: Context) -> Result | None:
        """Return a Result to take the turn, or None to let the next handler try."""


class NoHandlerMatched(RuntimeError):
    """The handler list must end with a catch-all (handlers.fallback)."""


class Router:
    def __init__(self, handlers: Sequence[Handler]):
        self.handlers = tuple(handlers)

    def route(self, ctx: Context) -> Result:
        """First final match wins; non-final results add their replies and session and pass on."""
        replies: tuple = ()
        names: list[str] = []
        for handler in self.handlers:
            result = handler.handle(ctx)
            if result is None:
                continue
            replies += result.replies
            names.append(handler.name)
            if result.session is not None:
                ctx = replace(ctx, session=result.session)
            if result.final:
                return replace(result, replies=replies, session=ctx.session, handler="+".join(names))
        raise NoHandlerMatched(f"no handler took {ctx.inbound.kind!r} in {ctx.inbound.conversation_id}")

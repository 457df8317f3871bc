"""The frozen values that flow one way: adapter -> engine -> handlers -> commit -> delivery."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Mapping


class State(StrEnum):
    """Conversation states (design.md): NEW -> BOT -> QUEUED -> WITH_AGENT -> CLOSED."""

    NEW = "NEW"
    BOT = "BOT"
    QUEUED = "QUEUED"
    WITH_AGENT = "WITH_AGENT"
    CLOSED = "CLOSED"


class Sender(StrEnum):
    """Who wrote a transcript line; the widget protocol uses the same words."""

    VISITOR = "visitor"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Customer:
    """Who the buyer is, as far as the channel tells us."""

    id: str
    name: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class Inbound:
    """One normalised event from an adapter.

    `message_id` is the platform's id (WeChat MsgId, Telegram update_id, widget client id); the engine
    dedupes on it so a retry never produces a second reply.
    """

    channel: str
    conversation_id: str
    message_id: str
    customer: Customer
    text: str = ""
    kind: str = "text"  # "text" | "unsupported" (picture, sticker, voice ...) | "event"
    ts: float = 0.0


@dataclass(frozen=True)
class Reply:
    """One outgoing message. `phrase` names the phrasebook id it came from (for metrics and tests)."""

    text: str
    sender: Sender = Sender.BOT
    phrase: str | None = None


@dataclass(frozen=True)
class Session:
    """A conversation's state as kept in Redis (one hash per conversation)."""

    conversation_id: str
    channel: str
    state: State = State.NEW
    locale: str | None = None
    customer_name: str | None = None
    miss_count: int = 0
    last_intent: str | None = None
    turns: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def is_new(self) -> bool:
        return self.state is State.NEW

    def evolve(self, **changes: object) -> Session:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Result:
    """What a handler decided: replies to send and the session to commit.

    `final=False` lets a handler add its replies (a welcome line) and pass the turn on to the next
    handler, which sees the updated session; the router concatenates the replies.
    """

    replies: tuple[Reply, ...] = ()
    session: Session | None = None
    handler: str = ""
    intent: str | None = None
    final: bool = True
    meta: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TranscriptEntry:
    """One line of a conversation's history."""

    id: str
    sender: Sender
    text: str
    ts: float

    def to_json(self) -> dict[str, object]:
        return {"type": "message", "id": self.id, "from": str(self.sender), "text": self.text, "ts": self.ts}


@dataclass(frozen=True)
class Outcome:
    """What the engine hands back to the adapter that submitted the event."""

    replies: tuple[TranscriptEntry, ...]
    duplicate: bool = False
    handler: str = ""

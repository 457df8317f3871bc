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


class Kind(StrEnum):
    """What an Inbound event is. Buyer messages, agent actions and timer ticks share one pipeline."""

    TEXT = "text"                # a buyer's text message
    UNSUPPORTED = "unsupported"  # a buyer's sticker, voice ... (or a picture that could not be fetched)
    IMAGE = "image"              # a buyer's picture, stored (Inbound.image is its file id)
    AGENT_REPLY = "agent_reply"
    AGENT_CLOSE = "agent_close"
    AGENT_TRANSFER = "agent_transfer"
    AGENT_PICK = "agent_pick"    # an agent takes a waiting buyer from its groups' queue
    TIMER = "timer"              # text = "<timer kind>|<version>", e.g. "frt|alice|1700000000.0"
    FOLLOW = "follow"            # the buyer followed / opened the account (WeChat subscribe): welcome them
    UNFOLLOW = "unfollow"        # the buyer unfollowed: close what is open, say nothing
    SUPERVISOR_ASSIGN = "supervisor_assign"  # a supervisor takes a chat over or hands it to an agent


BUYER_KINDS = frozenset({Kind.TEXT, Kind.UNSUPPORTED, Kind.IMAGE})


@dataclass(frozen=True)
class Inbound:
    """One normalised event from an adapter (or the desk, or the timer runner).

    `message_id` is the platform's id (WeChat MsgId, Telegram update_id, widget client id, timer
    member); the engine dedupes on it so a retry never produces a second reply.
    """

    channel: str
    conversation_id: str
    message_id: str
    customer: Customer
    text: str = ""
    kind: str = Kind.TEXT
    ts: float = 0.0
    agent: str | None = None    # the acting agent for agent actions
    target: str | None = None   # transfer target: "group:<name>" or "agent:<username>"
    page_url: str = ""          # the web page a widget buyer wrote from (checked by the adapter)
    page_title: str = ""
    image: str = ""             # file id of a picture (bot/files.py): a buyer's, or an agent's reply

    @property
    def from_buyer(self) -> bool:
        return self.kind in BUYER_KINDS


@dataclass(frozen=True)
class Reply:
    """One outgoing message. `phrase` names the phrasebook id it came from (for metrics and tests)."""

    text: str
    sender: Sender = Sender.BOT
    phrase: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    image: str = ""  # file id of a picture sent with (or instead of) the text


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
    last_buyer_at: float = 0.0
    tags: str = ""                  # comma-separated
    cases: int = 0                  # past (closed) handoffs
    rating_pending: str = ""        # "1" after a close, until the buyer rates or moves on
    rating: str = ""                # the last satisfaction rating, 1-5
    page_url: str = ""              # the page a widget buyer last wrote from, shown on the desk
    page_title: str = ""
    message_ack: str = ""           # queued_at (stamp) of the wait whose left message was acknowledged
    # Reports: the shop day the current conversation started, whether it was handed to a human
    # ("1", set at commit), and who handled the last handoff (for its rating).
    conv_day: str = ""
    conv_handed: str = ""
    last_agent: str = ""
    last_group: str = ""
    offered: str = ""               # FAQ ids offered as "您是不是想问" (comma-separated), until the buyer picks
    # The handoff fields below are owned by the atomic handoff steps in the store (a separate hash);
    # handlers read them and ask for changes through effects.
    handoff: Handoff | None = None

    @property
    def is_new(self) -> bool:
        return self.state is State.NEW

    def evolve(self, **changes: object) -> Session:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Handoff:
    """A conversation's human-handoff record (QUEUED or WITH_AGENT; gone when closed)."""

    state: State
    group: str
    reason: str
    queued_at: float
    agent: str | None = None
    assigned_at: float | None = None
    first_reply_at: float | None = None
    reassignments: int = 0
    version: str = ""  # assigned_at exactly as stored: a timer acts only on the assignment it was set for
    notice: str = ""   # what a queued buyer was told: "queued", "off_hours", "nobody_online" or "pending" (not yet)


@dataclass(frozen=True)
class Effect:
    """A change to shared routing state, executed atomically at commit.

    kind: "handoff" (group, reason) | "first_reply" (agent) | "reassign" (agent, version) |
          "transfer" (agent, group or target_agent) | "close" (reason, agent) | "rate" (score) |
          "timer" (member, due) | "pick" (agent: takes the queued chat if it has room) |
          "notice" (version: the re-queue it was set for) | "followup" (reason: its kind, score, agent)
    """

    kind: str
    group: str | None = None
    reason: str | None = None
    agent: str | None = None
    target_agent: str | None = None
    version: str | None = None
    score: int | None = None
    member: str | None = None
    due: float | None = None


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
    effects: tuple[Effect, ...] = ()
    record_message: bool = True  # False: an agent action refused by the handler leaves no transcript line
    error: str | None = None     # an agent action refused: the code sent back to the desk
    meta: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TranscriptEntry:
    """One line of a conversation's history."""

    id: str
    sender: Sender
    text: str
    ts: float
    agent: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()  # (label, text to send back)
    image: str = ""                            # file id of a picture (served at /files/<id>)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"type": "message", "id": self.id, "from": str(self.sender), "text": self.text, "ts": self.ts}
        if self.agent:
            out["agent"] = self.agent
        if self.image:
            out["image"] = self.image
        if self.buttons:
            out["buttons"] = [{"label": label, "text": text} for label, text in self.buttons]
        return out


@dataclass(frozen=True)
class Outcome:
    """What the engine hands back to the adapter that submitted the event."""

    replies: tuple[TranscriptEntry, ...]
    duplicate: bool = False
    in_progress: bool = False  # a duplicate whose first attempt has not committed yet
    handler: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Case:
    """One closed handoff of a conversation (a buyer may have several): the desk's history."""

    conversation_id: str
    queued_at: float
    closed_at: float
    agent: str | None = None
    last_id: str = "0-0"  # the transcript stream id of the case's last line


@dataclass(frozen=True)
class Note:
    """An agent's internal note on a conversation: shown on desks, never sent to the buyer."""

    id: str
    agent: str
    text: str
    ts: float

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "agent": self.agent, "text": self.text, "ts": self.ts}

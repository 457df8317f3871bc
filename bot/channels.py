"""What each channel can do, in one place, so handlers stay channel-agnostic and replies degrade
gracefully: buttons become numbered text where a channel has none, long texts are split at the
channel's limit, and channels that cannot answer inside the request get later messages by API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.types import TranscriptEntry


@dataclass(frozen=True)
class Capabilities:
    name: str
    buttons: bool                        # inline buttons (else numbered text; a numbered answer is understood)
    max_text: int                        # one message's limit ...
    unit: Literal["chars", "bytes"]      # ... counted in characters or UTF-8 bytes
    passive_reply: bool                  # the reply can ride in the platform's HTTP request (WeChat)
    push: bool                           # later messages (agent replies, notices) go out by API via the outbox


CAPABILITIES: dict[str, Capabilities] = {
    "web": Capabilities("web", buttons=True, max_text=20000, unit="chars", passive_reply=False, push=False),
    "telegram": Capabilities("telegram", buttons=True, max_text=4096, unit="chars", passive_reply=False, push=True),
    "wechat": Capabilities("wechat", buttons=False, max_text=2000, unit="bytes", passive_reply=True, push=True),
    "wecom_kf": Capabilities("wecom_kf", buttons=False, max_text=2000, unit="bytes", passive_reply=False, push=True),
}


def capabilities(channel: str) -> Capabilities:
    return CAPABILITIES.get(channel, CAPABILITIES["web"])


def pushes(channel: str) -> bool:
    """True when messages committed outside the buyer's own request must be delivered by API."""
    return channel in CAPABILITIES and CAPABILITIES[channel].push


def split_text(text: str, limit: int, unit: Literal["chars", "bytes"] = "chars") -> list[str]:
    """Split at the limit, preferring a line break, then a sentence end, then a space."""
    size = (lambda s: len(s.encode("utf-8"))) if unit == "bytes" else len
    parts: list[str] = []
    rest = text
    while size(rest) > limit:
        cut = _fit(rest, limit, size)
        window = rest[:cut]
        for sep in ("\n", "。", "！", "？", ". ", "! ", "? ", "；", " "):
            at = window.rfind(sep)
            if at >= cut // 2:
                cut = at + len(sep)
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _fit(text: str, limit: int, size) -> int:  # type: ignore[no-untyped-def]
    """The longest prefix (in characters) whose size is within the limit."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def as_text(entry: TranscriptEntry) -> str:
    """A message with its buttons as numbered lines, for channels without buttons."""
    if not entry.buttons:
        return entry.text
    lines = [entry.text, ""] + [f"{value} — {label}" for label, value in entry.buttons]
    return "\n".join(lines)

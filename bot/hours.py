"""Business hours in the shop's time zone: are humans on duty, and when are they back.

A shop's week is one list of opening windows per weekday (`[shop] business_hours` for every day,
`[shop.hours]` per weekday), with dated exceptions (`[[shop.exceptions]]`: holidays, a late
opening). A window may run past midnight ("22:00-02:00"); it belongs to the day it opens on, so a
Friday night shift keeps going into Saturday even when Saturday is a holiday.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOSED = "closed"
DAY = 24 * 60
_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
SEARCH_DAYS = 400  # how far ahead "when are you back" looks before giving up (a shop closed for good)


@dataclass(frozen=True)
class Window:
    """Minutes after the opening day's midnight; `end` > DAY for a window that runs past midnight."""

    start: int
    end: int

    def label(self, which: str) -> str:
        minutes = self.start if which == "open" else self.end
        if which != "open" and minutes == DAY:
            return "24:00"
        minutes %= DAY
        return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_windows(text: str) -> tuple[Window, ...]:
    """"09:00-18:30", "09:00-12:00, 13:30-18:30", "22:00-02:00" (past midnight), "00:00-24:00"
    (all day) or "closed". Raises ValueError with a message for the config check."""
    value = text.strip()
    if value.lower() == CLOSED:
        return ()
    out: list[Window] = []
    for part in value.split(","):
        m = _WINDOW.match(part.strip())
        if not m:
            raise ValueError(f"expected HH:MM-HH:MM (several separated by commas) or \"closed\", got {text!r}")
        sh, sm, eh, em = (int(g) for g in m.groups())
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em):
            raise ValueError(f"not a time of day in {part.strip()!r} (00:00 to 24:00)")
        start, end = sh * 60 + sm, eh * 60 + em
        if end == start:
            raise ValueError(f"opening and closing time are the same in {part.strip()!r}")
        out.append(Window(start, end if end > start else end + DAY))
    out.sort(key=lambda w: w.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.end:
            raise ValueError(f"windows overlap in {text!r}")
    if out and out[-1].end - DAY > out[0].start:
        raise ValueError(f"the window past midnight runs into the first one in {text!r}")
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """Opening windows per weekday (Monday first) and per exceptional date."""

    weekly: tuple[tuple[Window, ...], ...]
    exceptions: Mapping[date, tuple[Window, ...]] = field(default_factory=dict)

    def windows_on(self, day: date) -> tuple[Window, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly[day.weekday()]


@dataclass(frozen=True)
class Opening:
    """When humans are next on duty: the local start and the window it opens."""

    at: datetime
    window: Window


@dataclass(frozen=True)
class ShopClock:
    schedule: Schedule
    zone: ZoneInfo

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.zone)

    def _spans(self, day: date) -> list[tuple[datetime, datetime, Window]]:
        midnight = datetime.combine(day, time(0), tzinfo=self.zone)
        return [(midnight + timedelta(minutes=w.start), midnight + timedelta(minutes=w.end), w)
                for w in self.schedule.windows_on(day)]

    def is_open(self, ts: float) -> bool:
        now = self.local(ts)
        today = now.date()
        return any(start <= now < end for day in (today - timedelta(days=1), today) for start, end, _ in self._spans(day))

    def next_opening(self, ts: float) -> Opening | None:
        """The next window that opens after `ts` (None when none opens within SEARCH_DAYS)."""
        now = self.local(ts)
        for offset in range(SEARCH_DAYS):
            for start, _, window in self._spans(now.date() + timedelta(days=offset)):
                if start > now:
                    return Opening(start, window)
        return None

    def back_values(self, ts: float, text: Callable[..., str], locale: str | None) -> dict[str, str]:
        """The {open} {close} {back} values of the off-hours phrases. `text` is Phrasebook.text."""
        opening = self.next_opening(ts)
        if opening is None:
            return {"open": "", "close": "", "back": text("system.back_later", locale)}
        values = {"open": opening.window.label("open"), "close": opening.window.label("close")}
        days = (opening.at.date() - self.local(ts).date()).days
        if days == 0:
            back = text("system.back_today", locale, **values)
        elif days == 1:
            back = text("system.back_tomorrow", locale, **values)
        elif days < 7:
            day = text(f"system.day_{DAYS[opening.at.weekday()]}", locale)
            back = text("system.back_on", locale, day=day, **values)
        else:
            back = text("system.back_date", locale, month=str(opening.at.month), mday=str(opening.at.day), **values)
        return values | {"back": back}

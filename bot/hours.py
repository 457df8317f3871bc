"""Business hours in the shop's time zone: are humans on duty, and when are they back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.config import BusinessHours


@dataclass(frozen=True)
class ShopClock:
    hours: BusinessHours
    zone: ZoneInfo

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.zone)

    def is_open(self, ts: float) -> bool:
        now = self.local(ts).time()
        return self.hours.open <= now < self.hours.close or (self.hours.close == time.max and now >= self.hours.open)

    def back_today(self, ts: float) -> bool:
        """Outside hours: True when humans return later today (before opening), False when tomorrow."""
        return self.local(ts).time() < self.hours.open

"""Reports for supervisors: per-day aggregates in the shop's time zone.

Writing: the engine asks `ReportMarks.mark` what a turn counts (a new conversation, a buyer message,
a question the bot could not answer); the commit script adds the handoff figures (handed over, queue
wait, first-response time, reassignments, ratings) in the same atomic step, so nothing is estimated
or counted twice. Reading: `build_report` merges the day hashes of a range — one hash per day, so any
range costs one round trip and as many small hashes as it has days.

Definitions (what the figures mean):
- a conversation starts with a buyer message in a new or closed chat, or after 24 h of buyer silence;
- handed over: a conversation in which a human was needed at least once (the buyer asked, a dispute,
  or repeated misses); counted on the day it started. bot resolved = conversations - handed over;
- first response: from the moment a human was needed to the first agent reply; bot replies and
  notices never stop it, and a reassignment does not restart it;
- queue wait: from the moment a human was needed to the first assignment to an agent;
- percentiles are nearest-rank over second-resolution buckets (10 s above 10 minutes, 1 min above 1 h).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.types import Inbound, Kind, Result, Session, State

CONVERSATION_GAP = 24 * 3600
MAX_DAYS = 3660          # ten years in one request
SCORES = ("1", "2", "3", "4", "5")


def shop_day(ts: float, zone: ZoneInfo) -> tuple[str, str]:
    """(YYYY-MM-DD, HH) of a unix time on the shop's wall clock."""
    local = datetime.fromtimestamp(ts, zone)
    return local.strftime("%Y-%m-%d"), local.strftime("%H")


class ReportMarks:
    """What one turn adds to the reports, decided before commit (the commit writes it)."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone

    def mark(self, inbound: Inbound, before: Session, final: Session, result: Result, now: float) -> tuple[Session, dict[str, Any]]:
        day, hour = shop_day(now, self.zone)
        ctx: dict[str, Any] = {"day": day, "hour": hour, "channel": final.channel or inbound.channel, "now": now}
        if inbound.from_buyer:
            ctx["buyer"] = True
            starts = before.state in (State.NEW, State.CLOSED) or not before.conv_day \
                or (before.last_buyer_at and now - before.last_buyer_at > CONVERSATION_GAP)
            if starts and result.handler != "rating":  # a rating belongs to the conversation it rates
                final = final.evolve(conv_day=day, conv_handed="")
                ctx["new"] = True
            if inbound.kind == Kind.TEXT and "faq" in result.handler.split("+") and result.intent is None and inbound.text.strip():
                ctx["gap"], ctx["mid"] = inbound.text.strip()[:500], inbound.message_id
        ctx["conv_day"] = final.conv_day or day
        return final, ctx


class RangeError(ValueError):
    """A bad ?from=&to= range; the message says what is wrong."""


def parse_range(start: str | None, end: str | None, today: str) -> list[str]:
    """The days from `start` to `end` inclusive (YYYY-MM-DD; either defaults to today)."""
    try:
        first = date.fromisoformat(start or today)
        last = date.fromisoformat(end or today)
    except ValueError:
        raise RangeError("from and to are dates as YYYY-MM-DD") from None
    if last < first:
        raise RangeError("to must not be before from")
    span = (last - first).days + 1
    if span > MAX_DAYS:
        raise RangeError(f"at most {MAX_DAYS} days per report")
    return [(first + timedelta(days=i)).isoformat() for i in range(span)]


@dataclass
class _Figures:
    """Counters and duration histograms of one slice (a day, an agent, a group ...)."""

    counts: dict[str, int]
    hist: dict[str, dict[int, int]]

    @classmethod
    def empty(cls) -> _Figures:
        return cls(defaultdict(int), defaultdict(lambda: defaultdict(int)))

    def add(self, hist: str | None, key: Any, value: int) -> None:
        if hist is None:
            self.counts[key] += value
        else:
            self.hist[hist][key] += value

    def durations(self, name: str) -> dict[str, Any]:
        n = self.counts.get(f"{name}_n", 0)
        return {
            "p50": _percentile(self.hist.get(name, {}), 0.5), "p90": _percentile(self.hist.get(name, {}), 0.9),
            "count": n, "average": round(self.counts.get(f"{name}_ms", 0) / n / 1000, 3) if n else None,
        }

    def csat(self) -> dict[str, Any]:
        ratings, asked = self.counts.get("ratings", 0), self.counts.get("rating_asked", 0)
        return {
            "ratings": ratings,
            "average": round(self.counts.get("rating_sum", 0) / ratings, 3) if ratings else None,
            "satisfied_share": round(self.counts.get("satisfied", 0) / ratings, 4) if ratings else None,
            "asked": asked,
            "response_rate": round(ratings / asked, 4) if asked else None,
        }

    def summary(self) -> dict[str, Any]:
        conversations, handed = self.counts.get("conversations", 0), self.counts.get("handed_over", 0)
        resolved = max(0, conversations - handed)
        return {
            "conversations": conversations, "handed_over": handed, "bot_resolved": resolved,
            "deflection_rate": round(resolved / conversations, 4) if conversations else None,
            "handoffs": self.counts.get("handoffs", 0), "messages": self.counts.get("messages", 0),
            "first_response_seconds": self.durations("first_response"),
            "queue_wait_seconds": self.durations("queue_wait"),
            "reassignments": self.counts.get("reassignments", 0), "transfers": self.counts.get("transfers", 0),
            "csat": self.csat(),
        }

    def agent_summary(self) -> dict[str, Any]:
        return {
            "chats": self.counts.get("assigned", 0), "closed": self.counts.get("closed", 0),
            "first_response_seconds": self.durations("first_response"),
            "reassignments": self.counts.get("reassignments", 0), "transfers": self.counts.get("transfers", 0),
            "csat": self.csat(),
        }


@functools.lru_cache(maxsize=1 << 16)
def _parse(field: str) -> tuple[str, str, str | None, Any]:
    """A hash field as (slice kind or "", slice name, histogram or None, bucket or counter name);
    the same names recur every day, so each is parsed once."""
    metric, _, where = field.partition("@")
    kind, _, name = where.partition(":")
    hist, sep, bucket = metric.partition(":")
    if sep and hist in ("first_response", "queue_wait"):
        return kind, name, hist, int(float(bucket))
    return kind, name, None, metric


def _percentile(hist: dict[int, int], p: float) -> int | None:
    """Nearest rank: the smallest bucket holding at least ceil(p * n) of the samples."""
    n = sum(hist.values())
    if not n:
        return None
    rank, seen = max(1, math.ceil(p * n)), 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket
    return None  # unreachable


def build_report(days: list[str], hashes: list[dict[str, str]], zone: str, agents: dict[str, str],
                 groups: dict[str, str]) -> dict[str, Any]:
    """The JSON of GET /desk/api/reports from the day hashes of the range (see the contract)."""
    total = _Figures.empty()
    slices: dict[str, dict[str, _Figures]] = {"a": defaultdict(_Figures.empty), "g": defaultdict(_Figures.empty),
                                              "c": defaultdict(_Figures.empty), "h": defaultdict(_Figures.empty)}
    scores = {s: 0 for s in SCORES}
    # Sum the range field by field first (plain dict work); each distinct field is then parsed once.
    summed: dict[str, int] = defaultdict(int)
    for raw in hashes:
        for field, value in raw.items():
            summed[field] += int(value)
    plain = []
    for field, n in summed.items():
        kind, name, hist, key = _parse(field)
        if kind:
            if kind in slices:
                slices[kind][name].add(hist, key, n)
        elif hist is None and key.startswith("score:"):
            scores[key[6:]] = scores.get(key[6:], 0) + n
        else:
            plain.append((field, hist, key))
            total.add(hist, key, n)
    by_day = []
    for day, raw in zip(days, hashes):
        figures = _Figures.empty()
        for field, hist, key in plain:
            if field in raw:
                figures.add(hist, key, int(raw[field]))
        by_day.append({"date": day, **figures.summary()})
    out = {"from": days[0], "to": days[-1], "timezone": zone, **total.summary()}
    out["csat"]["scores"] = scores
    out["by_day"] = by_day
    names = list(agents) + sorted(set(slices["a"]) - set(agents))
    out["by_agent"] = [{"agent": a, "display_name": agents.get(a, a), **slices["a"][a].agent_summary()} for a in names]
    out["by_group"] = [
        {"group": g, "display_name": groups.get(g, g),
         "handed_over": f.counts.get("handed_over", 0), "handoffs": f.counts.get("handoffs", 0),
         "queue_wait_seconds": f.durations("queue_wait"), "first_response_seconds": f.durations("first_response"),
         "reassignments": f.counts.get("reassignments", 0), "csat": f.csat()}
        for g, f in ((g, slices["g"][g]) for g in list(groups) + sorted(set(slices["g"]) - set(groups)))
    ]
    out["by_channel"] = [
        {"channel": c, **{k: v for k, v in f.summary().items() if k in ("conversations", "handed_over", "bot_resolved", "deflection_rate", "messages")},
         "csat": f.csat()}
        for c, f in sorted(slices["c"].items())
    ]
    out["by_hour"] = [{"hour": h, "conversations": slices["h"][f"{h:02d}"].counts.get("conversations", 0),
                       "messages": slices["h"][f"{h:02d}"].counts.get("messages", 0)} for h in range(24)]
    return out


CSV_COLUMNS = ("date", "conversations", "handed_over", "bot_resolved", "deflection_rate", "messages",
               "first_response_p50", "first_response_p90", "queue_wait_p50", "queue_wait_p90", "reassignments",
               "transfers", "ratings", "rating_average", "satisfied_share", "rating_response_rate")


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per day plus a total row, in CSV_COLUMNS order."""
    def row(label: str, r: dict[str, Any]) -> list[Any]:
        frt, qw, csat = r["first_response_seconds"], r["queue_wait_seconds"], r["csat"]
        values = [label, r["conversations"], r["handed_over"], r["bot_resolved"], r["deflection_rate"], r["messages"],
                  frt["p50"], frt["p90"], qw["p50"], qw["p90"], r["reassignments"], r["transfers"],
                  csat["ratings"], csat["average"], csat["satisfied_share"], csat["response_rate"]]
        return ["" if v is None else v for v in values]
    return [row(d["date"], d) for d in report["by_day"]] + [row("total", report)]

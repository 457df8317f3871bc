"""Prometheus metrics, exposed at /metrics (each process exposes its own; Prometheus sums them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("xiaoer_messages_total", "Buyer messages handled", ["channel"])
DUPLICATES = Counter("xiaoer_duplicate_messages_total", "Buyer messages dropped as duplicates", ["channel"])
HANDLED = Counter("xiaoer_handled_total", "Turns by the handler that decided them", ["handler"])
FAQ = Counter("xiaoer_faq_total", "FAQ lookups by outcome (answered or missed)", ["outcome"])
TURN_SECONDS = Histogram(
    "xiaoer_turn_seconds", "Time from submit to committed reply",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TURN_ERRORS = Counter("xiaoer_turn_errors_total", "Turns that failed and were given back for a retry")
HANDOFFS = Counter("xiaoer_handoffs_total", "Handoffs to a human by outcome (assigned or queued)", ["outcome"])
REASSIGNED = Counter("xiaoer_reassignments_total", "First-response-timeout reassignments by outcome", ["outcome"])
SUPERVISOR = Counter("xiaoer_supervisor_escalations_total", "Chats reassigned max_reassignments times without a reply")
RATINGS = Counter("xiaoer_ratings_total", "Satisfaction ratings by score", ["score"])
BUSY = Counter("xiaoer_busy_total", "Turns refused at once because this process was overloaded (the client resends)")

# Service levels, observed when the commit scripts count them for the reports (so the two agree).
_WAIT_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)
FIRST_RESPONSE = Histogram("xiaoer_first_response_seconds",
                           "From the moment a human was needed to the first agent reply", buckets=_WAIT_BUCKETS)
QUEUE_WAIT = Histogram("xiaoer_queue_wait_seconds",
                       "From the moment a human was needed to the first assignment", buckets=(0, *_WAIT_BUCKETS))
QUEUE_LENGTH = Gauge("xiaoer_queue_length", "Chats waiting for an agent, per group (at scrape time)", ["group"])
AGENTS_ONLINE = Gauge("xiaoer_agents_online", "Agents with an open desk and not away (at scrape time)", ["group"])
DELIVERY_ERRORS = Counter("xiaoer_delivery_errors_total", "Outbound messages a platform refused or failed, per channel",
                          ["channel", "kind"])  # kind: retried | permanent | gave_up
DELIVERY_RETRIES = Counter("xiaoer_delivery_retries_total", "Outbound delivery retries, per channel", ["channel"])
UNDERSTANDING = Counter("xiaoer_understanding_total",
                        "Buyer questions by outcome: answered, suggested (did you mean ...), refused", ["outcome"])
_SAMPLES = {"first_response": FIRST_RESPONSE, "queue_wait": QUEUE_WAIT}


def observe_samples(samples: Iterable[Sequence[Any]]) -> None:
    """[name, seconds] pairs returned by the commit and drain scripts."""
    for name, seconds, *_ in samples:
        hist = _SAMPLES.get(str(name))
        if hist is not None:
            hist.observe(max(0.0, float(seconds)))

"""Prometheus metrics, exposed at /metrics (each process exposes its own; Prometheus sums them)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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

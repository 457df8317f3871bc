"""Why a chat went to a human, and what supervisors must follow up on: one list for the handlers,
the config check and the desk.

Labels for the desk (zh-CN, en) are in the phrasebook's `[reasons]` and `[flags]` tables; the desk
gets the label and the flag with every chat, so it never shows a raw key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    key: str
    flag: str = ""  # "complaint" | "dispute" | "": the badge that warns the agent before they open the chat


REASONS = (
    Reason("request"),                 # the buyer asked for a person
    Reason("misses"),                  # the FAQ was unsure faq.miss_limit times in a row
    Reason("message", "message"),      # a message left off hours
    Reason("product", "dispute"),      # quality, authenticity, skin reactions ...
    Reason("logistics", "dispute"),    # lost, stuck, the courier's attitude
    Reason("service", "complaint"),    # our service attitude
    Reason("bad_review", "complaint"), # a bad-review threat or a complaint to the platform or authorities
)
KEYS = tuple(r.key for r in REASONS)
FLAGS = ("complaint", "dispute", "message")
# Checked in this order by the escalation handler: a bad-review threat outranks the dispute it is about.
DISPUTES = ("bad_review", "product", "logistics", "service")
MESSAGE = "message"

# What supervisors must follow up on (their desks list these until one of them takes it).
LOW_RATING = "low_rating"          # a buyer rated the service 1 or 2
REASSIGNMENTS = "reassignments"    # nobody answered after handoff.max_reassignments
FOLLOWUPS = (LOW_RATING, REASSIGNMENTS)


def flag_of(key: str) -> str:
    return next((r.flag for r in REASONS if r.key == key), "")

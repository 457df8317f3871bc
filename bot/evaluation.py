"""Scoring understanding on labelled buyer messages — the same rules as the shared FAQ scorer.

A decision is correct when an in-scope message (expect = an FAQ id) is answered with that id, and
when a message that must not be answered (expect = null: out of scope, a request for a person, a
dispute) is not answered. "Resolved" also counts an in-scope message that was not answered but had
the right entry among the "did you mean" suggestions.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.understanding import Understanding


@dataclass(frozen=True)
class Case:
    text: str
    expect: str | None
    kind: str = "?"
    reason: str | None = None  # for kind "escalate": the handoff reason it should get, when labelled


@dataclass(frozen=True)
class Score:
    total: int
    in_scope: int
    right: int
    resolved: int
    wrong: int            # answered with another id (any answer counts for expect = null)
    must_refuse: int
    refused: int
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (correct, total)
    escalations: int = 0     # messages of kind "escalate" (requests for a person, disputes)
    handed_over: int = 0     # ... that were handed to a person at once, with a reason
    reasoned: int = 0        # ... of those with a labelled reason
    right_reason: int = 0    # ... handed over with that reason
    out_of_scope: int = 0    # messages of kind "out_of_scope" (no shop question the FAQ covers)
    offered: int = 0         # ... that got "did you mean" suggestions (the shared scorer counts them refused)

    @property
    def handed_over_share(self) -> float:
        return self.handed_over / self.escalations if self.escalations else 0.0

    @property
    def offered_share(self) -> float:
        return self.offered / self.out_of_scope if self.out_of_scope else 0.0

    @property
    def resolved_share(self) -> float:
        return self.resolved / self.in_scope if self.in_scope else 0.0

    @property
    def wrong_share(self) -> float:
        return self.wrong / self.total if self.total else 0.0

    @property
    def refused_share(self) -> float:
        return self.refused / self.must_refuse if self.must_refuse else 0.0

    @property
    def right_share(self) -> float:
        return self.right / self.in_scope if self.in_scope else 0.0


def load_cases(path: str | Path) -> list[Case]:
    """A .jsonl file of {"q", "expect", "kind"} lines, or the demo tuning .toml ([[case]] text/expect/kind)."""
    path = Path(path)
    if path.suffix == ".toml":
        with open(path, "rb") as f:
            return [Case(c["text"], c["expect"] or None, c.get("kind", "?")) for c in tomllib.load(f)["case"]]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Case(r["q"], r.get("expect") or None, r.get("kind", "?"), r.get("reason") or None) for r in rows]


def score(understanding: Understanding, cases: Iterable[Case]) -> Score:
    total = in_scope = right = resolved = wrong = must_refuse = refused = 0
    per_kind: Counter[str] = Counter()
    per_kind_ok: Counter[str] = Counter()
    tally: Counter[str] = Counter()  # escalations and out-of-scope messages, counted apart
    for case in cases:
        reading = understanding.read(case.text)
        got = reading.answer.id if reading.answer else None
        total += 1
        if case.expect is None:
            must_refuse += 1
            ok = got is None
            refused += ok
        else:
            in_scope += 1
            ok = got == case.expect
            right += ok
            resolved += ok or (got is None and case.expect in {e.id for e in reading.suggestions})
        wrong += got is not None and got != case.expect
        if case.kind == "escalate":
            tally["all"] += 1
            tally["handed"] += reading.handoff is not None
            tally["reasoned"] += case.reason is not None
            tally["right"] += case.reason is not None and reading.handoff == case.reason
        if case.kind == "out_of_scope":
            tally["oos"] += 1
            tally["offered"] += got is None and bool(reading.suggestions)
        per_kind[case.kind] += 1
        per_kind_ok[case.kind] += ok
    by_kind = {k: (per_kind_ok[k], n) for k, n in per_kind.items()}
    return Score(total, in_scope, right, resolved, wrong, must_refuse, refused, by_kind,
                 tally["all"], tally["handed"], tally["reasoned"], tally["right"],
                 tally["oos"], tally["offered"])

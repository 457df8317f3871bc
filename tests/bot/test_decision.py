"""The decision (bot/decision.py): a pure function of the signals, checked on hand-made signals."""

from __future__ import annotations

import numpy as np

from bot.decision import Signals, Thresholds, decide


def signals(meaning: list[float], lexical: list[float]) -> Signals:
    """Signals of a one-clause question whose questions and answers are equally close in meaning."""
    m, lex = np.array(meaning, dtype=np.float32), np.array(lexical, dtype=np.float32)
    none = np.full(len(m), -1.0, dtype=np.float32)
    return Signals(False, m, none, m, none, lex, lex, {}, {}, asks=True, negative=False, declines_person=False)


def test_a_clear_best_entry_is_answered() -> None:
    verdict = decide(signals([0.9, 0.3, 0.2, 0.1], [0.9, 0.1, 0.0, 0.0]), Thresholds(), {})
    assert (verdict.decision, verdict.answer, verdict.suggestions) == ("answer", 0, ())


def test_nothing_plausible_is_refused_without_suggestions() -> None:
    verdict = decide(signals([0.1, 0.05, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]), Thresholds(), {})
    assert (verdict.decision, verdict.answer, verdict.suggestions) == ("refuse", None, ())


def test_suggestions_are_the_entries_close_to_the_best() -> None:
    verdict = decide(signals([0.45, 0.42, 0.1, 0.0], [0.3, 0.3, 0.0, 0.0]), Thresholds(), {})
    assert verdict.decision == "suggest" and verdict.suggestions == (0, 1)


def test_the_entry_closest_in_meaning_is_always_among_the_suggestions() -> None:
    """Entries 0-2 share the buyer's words, entry 3 says what the buyer means in other words: the
    blend ranks it fourth, so it takes the third place."""
    sig = signals([0.40, 0.38, 0.36, 0.55], [0.35, 0.33, 0.32, 0.0])
    verdict = decide(sig, Thresholds(), {})
    assert verdict.decision == "suggest" and verdict.suggestions == (0, 1, 3)
    fewer = decide(signals([0.40, 0.20, 0.10, 0.55], [0.35, 0.0, 0.0, 0.0]), Thresholds(), {})
    assert fewer.decision == "suggest" and fewer.suggestions == (0, 3)

"""The decision (bot/decision.py): a pure function of the signals, checked on hand-made signals."""

from __future__ import annotations

import numpy as np

from bot.decision import Signals, Thresholds, decide


def signals(meaning: list[float], lexical: list[float], adapted: list[float] | None = None) -> Signals:
    """Signals of a one-clause question whose questions and answers are equally close in meaning
    (in the adapted meaning too, unless given)."""
    m, lex = np.array(meaning, dtype=np.float32), np.array(lexical, dtype=np.float32)
    a = m if adapted is None else np.array(adapted, dtype=np.float32)
    none = np.full(len(m), -1.0, dtype=np.float32)
    return Signals(False, m, none, m, none, lex, lex, a, a, {}, {}, asks=True, negative=False, declines_person=False)


def test_a_clear_best_entry_is_answered() -> None:
    verdict = decide(signals([0.9, 0.3, 0.2, 0.1], [0.9, 0.1, 0.0, 0.0]), Thresholds(), {})
    assert (verdict.decision, verdict.answer, verdict.suggestions) == ("answer", 0, ())


def test_nothing_plausible_is_refused_without_suggestions() -> None:
    verdict = decide(signals([0.1, 0.05, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]), Thresholds(), {})
    assert (verdict.decision, verdict.answer, verdict.suggestions) == ("refuse", None, ())


def test_unsure_offers_the_three_entries_the_adapted_meaning_ranks_first() -> None:
    """Entries 0 and 1 share the buyer's words; the adapted meaning puts entry 2 closest."""
    verdict = decide(signals([0.45, 0.42, 0.1, 0.0], [0.3, 0.3, 0.0, 0.0], adapted=[0.2, 0.35, 0.7, 0.0]),
                     Thresholds(), {})
    assert verdict.decision == "suggest" and verdict.suggestions == (2, 1, 0)
    assert verdict.top == 0  # the plain best entry is still reported as the candidate


def test_the_adapted_meaning_decides_whether_anything_is_offered() -> None:
    """The same plain signals: offered when the adapted meaning finds an entry plausible, refused
    when it finds none (an out-of-scope message that only shares a word with the FAQ)."""
    plain = ([0.4, 0.3, 0.1, 0.0], [0.1, 0.0, 0.0, 0.0])
    offered = decide(signals(*plain, adapted=[0.5, 0.3, 0.1, 0.0]), Thresholds(), {})
    refused = decide(signals(*plain, adapted=[0.1, 0.05, 0.0, 0.0]), Thresholds(), {})
    assert offered.decision == "suggest" and offered.suggestions[0] == 0
    assert (refused.decision, refused.suggestions) == ("refuse", ())

"""The labelled data the figures rest on is well formed: every expected id exists in its FAQ, every
kind is one the scorer knows, a labelled handoff reason is a real one (no accuracy is computed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.evaluation import load_cases
from bot.faq import load_faq_files
from bot.intents import IntentBook
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"
DEMO = ROOT / "phrasebook" / "faq" / "demo-shop.toml"
KINDS = {"plain", "paraphrase", "colloquial", "typo", "traditional", "english", "mixed", "long", "short",
         "out_of_scope", "escalate"}
SETS = [(DEMO, DATA / "faq_tuning_demo.toml"), (DEMO, DATA / "faq_heldout_demo.jsonl"), (DEMO, DATA / "escalations_tuning.jsonl")] + [
    (folder / "kb.toml", folder / "queries.jsonl") for folder in sorted(DATA.glob("**/*-shop"))]


@pytest.mark.parametrize(("kb", "queries"), SETS, ids=[str(q.relative_to(DATA)) for _, q in SETS])
def test_every_labelled_message_points_at_a_real_entry(kb: Path, queries: Path) -> None:
    ids = {e.id for e in load_faq_files([kb])}
    cases = load_cases(queries)
    assert len(cases) >= 40
    assert {c.expect for c in cases if c.expect} <= ids
    reasons = {i.handoff for i in IntentBook.load().intents if i.handoff}
    for case in cases:
        assert case.text.strip(), case
        if queries.suffix == ".jsonl" and queries.parent != DATA:  # the shops' files follow one schema
            assert case.kind in KINDS, case
            assert (case.expect is None) == (case.kind in ("out_of_scope", "escalate")), case
            assert case.reason is None or (case.kind == "escalate" and case.reason in reasons), case

"""Reply coaching: the service standard's rules by words, and by meaning with the sentence
embeddings of the understanding module — checked on held-out replies that are not among the
phrasebook's examples (tests/data/coach_eval.toml)."""

from __future__ import annotations

import tomllib

import pytest

from bot.coach import Coach
from bot.intents import Classifier
from bot.phrasebook import Phrasebook
from tests.conftest import ROOT

BOOK = Phrasebook.load(ROOT / "phrasebook")
WORDS = Coach(BOOK)  # no embedding: words only


def rules(coach: Coach, reply: str, bargaining: bool = True) -> list[str]:
    return [w.rule for w in coach.check(reply, "zh-CN", bargaining=bargaining)]


@pytest.mark.parametrize(("reply", "rule"), [
    ("没办法，就这个价", "blunt_no"),
    ("是你自己选错了尺码", "blame"),
    ("你这人怎么这样", "rude"),
    ("哦", "curt"),
    ("一百个人买了，就你一个投诉", "blame"),
])
def test_the_standard_s_own_examples_are_caught_by_words(reply: str, rule: str):
    assert rule in rules(WORDS, reply)


def test_a_refusal_is_only_coached_while_the_buyer_bargains():
    assert rules(WORDS, "没办法，就这个价", bargaining=False) == []


def test_every_rule_has_examples_and_a_suggestion_in_both_languages():
    assert set(WORDS.examples) >= {"blunt_no", "blame", "argue", "rude"}
    for locale in ("zh-CN", "en"):
        warning = Coach(BOOK).check("你这人怎么这样", locale)[0]
        assert warning.rule == "rude" and warning.message and warning.suggestion and "{" not in warning.suggestion


def test_good_replies_include_every_quick_phrase_filled_in():
    assert len(WORDS.good) > 60 and not any("{" in t for t in WORDS.good)


EVAL = tomllib.loads((ROOT / "tests/data/coach_eval.toml").read_text(encoding="utf-8"))["reply"]
HELD_OUT = [(r["kind"], t) for r in EVAL for t in r["texts"]]


def test_the_held_out_replies_are_not_examples():
    examples = {t for texts in WORDS.examples.values() for t in texts} | set(WORDS.good)
    assert not examples & {t for _, t in HELD_OUT}


@pytest.fixture(scope="module")
def by_meaning() -> Coach:
    from bot.encoder import Encoder

    encoder = Encoder()
    return Coach(BOOK, lambda examples: Classifier(encoder, examples))


def test_held_out_replies_are_coached_by_meaning(by_meaning: Coach):
    bad = [(kind, t) for kind, t in HELD_OUT if kind != "good"]
    caught = [t for kind, t in bad if kind in rules(by_meaning, t)]
    words_only = [t for kind, t in bad if kind in rules(WORDS, t)]
    # most are caught, in the right class; words alone catch far fewer
    assert len(caught) >= 0.85 * len(bad), sorted({t for _, t in bad} - set(caught))
    assert len(words_only) < 0.6 * len(bad)


def test_good_held_out_replies_pass_by_meaning(by_meaning: Coach):
    good = [t for kind, t in HELD_OUT if kind == "good"]
    flagged = [t for t in good if rules(by_meaning, t)]
    assert len(flagged) <= 2, flagged


def test_by_meaning_a_refusal_without_a_keyword_waits_for_bargaining(by_meaning: Coach):
    assert rules(by_meaning, "定价没法动", bargaining=True) == ["blunt_no"]
    assert rules(by_meaning, "定价没法动", bargaining=False) == []

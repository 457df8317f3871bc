"""FAQ files, the lexicon and the matcher (bot/faq.py), including the held-out evaluation set."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import pytest

from bot.faq import (
    DEFAULT_LEXICON_PATH,
    FaqEntry,
    FaqFileError,
    FaqMatch,
    FaqMatcher,
    Lexicon,
    load_faq_files,
)

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_FAQ = ROOT / "phrasebook" / "faq" / "demo-shop.toml"


@pytest.fixture(scope="module")
def entries() -> tuple[FaqEntry, ...]:
    return load_faq_files([DEMO_FAQ])


@pytest.fixture(scope="module")
def matcher(entries: tuple[FaqEntry, ...]) -> FaqMatcher:
    return FaqMatcher(entries)


# ───────────────────────────── the demo FAQ ─────────────────────────────


def test_demo_faq_loads_and_follows_the_house_style(entries: tuple[FaqEntry, ...]) -> None:
    assert len(entries) >= 32
    ids = [e.id for e in entries]
    assert len(set(ids)) == len(ids)
    for entry in entries:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry.id)
        assert 4 <= len(entry.questions) <= 8, entry.id
        assert any(q.isascii() for q in entry.questions), f"{entry.id}: no English variant"
        assert entry.answer.startswith("亲") and "😊" in entry.answer.split("～")[0], entry.id
        assert entry.answers.get("en"), f"{entry.id}: no English answer"
        assert entry.group in {"presales", "logistics", "aftersales", "payment"}, entry.id
    assert {"shipping-time", "refund-time", "invoice", "bargaining-discount", "working-hours"} <= set(ids)
    bargaining = next(e for e in entries if e.id == "bargaining-discount")
    assert "不" not in bargaining.answer  # a ladder of what we can do, never a blunt refusal


def test_paths_may_be_str_or_path() -> None:
    assert load_faq_files([str(DEMO_FAQ)]) == load_faq_files([DEMO_FAQ])


# ───────────────────────────── file errors ─────────────────────────────

GOOD = '[[faq]]\nid = "refund"\nquestions = ["怎么退款"]\nanswer = "亲，这样退款 😊"\n'


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ('[[faq]]\nid = "refund"\nquestions = ["a"\n', "TOML syntax error"),
        ('title = "x"\n' + GOOD, "title: unknown top-level key"),
        ("", "faq: no [[faq]] entries"),
        ('faq = "x"\n', "faq: no [[faq]] entries"),
        ('[[faq]]\nquestions = ["怎么退款"]\nanswer = "亲"\n', "faq[0].id: missing"),
        ('[[faq]]\nid = "Refund Now"\nquestions = ["怎么退款"]\nanswer = "亲"\n', "faq[0].id: must be a kebab-case string"),
        ('[[faq]]\nid = 3\nquestions = ["怎么退款"]\nanswer = "亲"\n', "faq[0].id"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = []\nanswer = "亲"\n', "faq[1].questions: must be a non-empty list of non-empty strings"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["ok", "  "]\nanswer = "亲"\n', "faq[1].questions"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["ok", 3]\nanswer = "亲"\n', "faq[1].questions"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = "怎么退款"\nanswer = "亲"\n', "faq[1].questions"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\n', "faq[1].answer: missing"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = " "\n', "faq[1].answer: must be a non-empty string"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\nanswers = "en"\n', "faq[1].answers: must be a table"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\nanswers = { en = "" }\n', "faq[1].answers.en"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\nanswers = { "English" = "x" }\n', "faq[1].answers.English"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\ngroup = 1\n', "faq[1].group"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\ntags = "x"\n', "faq[1].tags: must be a list of strings"),
        (GOOD + '[[faq]]\nid = "b"\nquestions = ["q"]\nanswer = "a"\nqestions = ["x"]\n', "faq[1].qestions: unknown key"),
        (GOOD + GOOD, 'faq[1].id: duplicate id "refund"'),
    ],
)
def test_file_errors_name_the_file_and_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FaqFileError) as info:
        load_faq_files([path])
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    assert isinstance(info.value, ValueError)


def test_missing_file_is_a_faq_file_error(tmp_path: Path) -> None:
    with pytest.raises(FaqFileError, match=r"nope\.toml: file not found"):
        load_faq_files([tmp_path / "nope.toml"])


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(GOOD, encoding="utf-8")
    second.write_text(GOOD.replace("refund", "other") + GOOD, encoding="utf-8")
    with pytest.raises(FaqFileError) as info:
        load_faq_files([first, second])
    message = str(info.value)
    assert message.startswith(f"{second}: faq[1].id: duplicate id \"refund\""), message
    assert str(first) in message


def test_optional_fields_are_loaded(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(
        GOOD + 'answers = { en = "Here is how 😊", "zh-TW" = "親" }\ngroup = "aftersales"\ntags = ["refund", "money"]\n',
        encoding="utf-8",
    )
    (entry,) = load_faq_files([path])
    assert entry == FaqEntry(
        id="refund",
        questions=("怎么退款",),
        answer="亲，这样退款 😊",
        answers={"en": "Here is how 😊", "zh-TW": "親"},
        group="aftersales",
        tags=("refund", "money"),
    )
    with pytest.raises(TypeError):
        entry.answers["fr"] = "non"  # type: ignore[index]
    assert hash(entry) == hash(load_faq_files([path])[0])  # frozen and hashable
    assert pickle.loads(pickle.dumps(entry)) == entry
    assert dataclasses.asdict(entry)["answers"] == {"en": "Here is how 😊", "zh-TW": "親"}


# ───────────────────────────── answers per locale ─────────────────────────────


def test_answer_for_locales(entries: tuple[FaqEntry, ...]) -> None:
    entry = next(e for e in entries if e.id == "shipping-time")
    assert entry.answer_for("zh-CN") == entry.answer
    assert entry.answer_for("en") == entry.answers["en"]
    assert entry.answer_for("en-US") == entry.answers["en"]
    traditional = entry.answer_for("zh-TW")
    assert traditional != entry.answer and "發貨" in traditional and "親" in traditional
    assert entry.answer_for("fr") == entry.answer  # unknown locale: the default answer


def test_answer_for_prefers_an_explicit_translation() -> None:
    entry = FaqEntry(id="x", questions=("q",), answer="亲，发货啦", answers={"zh-TW": "親，已出貨囉"})
    assert entry.answer_for("zh-TW") == "親，已出貨囉"
    assert entry.answer_for("en") == "亲，发货啦"  # no English answer: fall back to the default


# ───────────────────────────── matching ─────────────────────────────


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("什么时候发货", "shipping-time"),
        ("親，請問什麼時候發貨呀", "shipping-time"),  # Traditional
        ("發票怎麼開", "invoice"),
        ("什么时候发伙", "shipping-time"),  # homophone typo
        ("退宽多久到账", "refund-time"),  # homophone typo
        ("能用花被吗", "payment-methods"),  # homophone typo inside a word with a filler character
        ("领的优惠卷用不了", "coupons"),  # well-known misspelling
        ("When will my order ship?", "shipping-time"),  # English
        ("How long does the refund take?", "refund-time"),
        ("Do you accept WeChat Pay?", "payment-methods"),
        ("可以 refund 吗", "refund-how"),  # mixed Chinese / English
        ("有 invoice 吗", "invoice"),
        ("亲 在吗 老板 请问有色差吗 哈", "color-difference"),  # fillers
        ("快递到哪了🚚🚚", "tracking"),  # emoji
        ("ＳＦ快递可以吗", "courier-choice"),  # full-width
        ("退款", "refund-how"),  # very short
        ("发票", "invoice"),
        ("包邮", "shipping-fee"),
        (
            "你好，我上周五在你们店里买了一件米色的风衣，到现在物流信息一直都没有变化，"
            "我有点着急，想问一下我的快递到底到哪了",
            "tracking",
        ),  # long and rambling
        ("I bought a dress last week. It arrived today but the zip is broken. What can you do?", "damaged-item"),
    ],
)
def test_robust_matches(matcher: FaqMatcher, text: str, expected: str) -> None:
    result = matcher.match(text)
    assert result.id == expected, (text, result)
    assert result.entry is not None and result.entry.id == expected
    assert result.query == text
    assert matcher.threshold <= result.score <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "你们老板是谁",
        "你們老闆是誰",
        "今天天气怎么样",
        "帮我写个作文",
        "asdfgh",
        "qwertyuiop",
        "",
        "   ",
        "😊😊",
        "在吗",
        "你好",
        "谢谢",
        "12345",
        "什么",
        "怎么办",
        "tell me a joke",
        "你们家的直播几点开始",
        "我想投诉",
    ],
)
def test_refusals(matcher: FaqMatcher, text: str) -> None:
    result = matcher.match(text)
    assert result.entry is None and result.id is None, (text, result)
    assert 0.0 <= result.score < 1.0


def test_a_refusal_still_reports_the_best_candidate(matcher: FaqMatcher) -> None:
    result = matcher.match("你们老板是谁")
    assert result.id is None and result.candidate is not None and result.score > 0
    empty = matcher.match("😊")
    assert empty == FaqMatch(query="😊", entry=None, score=0.0)


def test_threshold_and_margin_are_respected(entries: tuple[FaqEntry, ...]) -> None:
    strict = FaqMatcher(entries, threshold=0.99)
    assert strict.match("什么时候发货").id is None
    assert strict.match("什么时候发货").score > 0.5
    no_margin = FaqMatcher(entries, margin=0.0)
    assert no_margin.match("什么时候发货").id == "shipping-time"


def test_matching_is_deterministic(matcher: FaqMatcher, entries: tuple[FaqEntry, ...]) -> None:
    texts = ["親，請問什麼時候發貨呀", "可以 refund 吗", "你们老板是谁"]
    again = FaqMatcher(entries)
    assert [matcher.match(t) for t in texts] == [again.match(t) for t in texts]


def test_scoring_only_candidates_gives_their_full_scan_scores(matcher: FaqMatcher, entries: tuple[FaqEntry, ...]) -> None:
    """A large FAQ scores only the candidates the meaning index found: each must get exactly the
    score the full scan gives it, for one clause and for windows of several."""
    texts = ["什么时候发货", "亲 我昨天拍的，今天能发货吗？顺丰可以吗", "可以 refund 吗", "fa huo 时间"]
    candidates = list(range(0, len(entries), 3))
    for text in texts:
        full = matcher.scores(text)
        assert matcher.scores(text, candidates) == {e: s for e, s in full.items() if e in candidates}
        assert full, text


def test_default_lexicon_and_custom_synonyms(entries: tuple[FaqEntry, ...], tmp_path: Path) -> None:
    default = Lexicon.load(DEFAULT_LEXICON_PATH)
    assert "亲" in default.fillers and default.synonyms["refund"] == "退款"
    assert FaqMatcher(entries).lexicon == default
    custom = tmp_path / "lexicon.toml"
    custom.write_text('fillers = ["亲"]\n[synonyms]\n"发票" = ["fapiao", "收据"]\n', encoding="utf-8")
    lexicon = Lexicon.load(custom)
    assert lexicon.synonyms == {"fapiao": "发票", "收据": "发票"}
    assert FaqMatcher(entries, lexicon=lexicon).match("亲 收据").id == "invoice"
    assert FaqMatcher(entries, lexicon=Lexicon()).match("收据").id is None  # no lexicon, no synonym


def test_bad_lexicon_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text('fillers = "亲"\n', encoding="utf-8")
    with pytest.raises(FaqFileError, match=r"lexicon\.toml: fillers: must be a list of strings"):
        Lexicon.load(path)
    path.write_text('colours = []\n', encoding="utf-8")
    with pytest.raises(FaqFileError, match=r"lexicon\.toml: colours: unknown key"):
        Lexicon.load(path)

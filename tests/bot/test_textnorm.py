"""Text normalisation and locale detection (bot/textnorm.py)."""

from __future__ import annotations

import pytest

from bot import textnorm
from bot.textnorm import detect_locale, normalise, to_simplified, to_traditional


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width letters and digits (NFKC)
        ("When Will My Order SHIP?", "when will my order ship"),
        ("親，請問什麼時候發貨呀", "亲 请问什么时候发货呀"),  # Traditional -> Simplified, punctuation -> space
        ("发货😊😊吗", "发货 吗"),  # emoji stripped
        ("  退款 \t\n 多久 ", "退款 多久"),  # whitespace collapsed
        ("可以 refund 吗？！", "可以 refund 吗"),
        ("165ｃｍ　５０ｋｇ", "165cm 50kg"),  # ideographic space, full-width units
        ("🎁🎁", ""),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_is_idempotent() -> None:
    for text in ("親，請問什麼時候發貨呀 😊", "Ｍ码换Ｌ码可以吗", "where's my parcel?"):
        once = normalise(text)
        assert normalise(once) == once


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("請問什麼時候發貨", "zh-TW"),
        ("退貨要怎麼弄", "zh-TW"),
        ("请问什么时候发货", "zh-CN"),
        ("你好", "zh-CN"),  # no character differs between the scripts: Simplified by default
        ("When will my order ship?", "en"),
        ("where is my 快递 please", "en"),  # mainly Latin words
        ("可以 refund 吗", "zh-CN"),  # mainly Chinese
        ("", "zh-CN"),
        ("12345 😊", "zh-CN"),
    ],
)
def test_detect_locale(text: str, locale: str) -> None:
    assert detect_locale(text) == locale


def test_to_traditional_uses_taiwan_phrases() -> None:
    assert to_traditional("什么时候发货") == "什麼時候發貨"
    assert to_traditional("头发") == "頭髮"
    assert to_traditional("软件") == "軟體"  # s2twp: Taiwan phrasing, not just characters
    assert to_simplified(to_traditional("亲，付款后48小时内发货哦")) == "亲，付款后48小时内发货哦"


def test_converters_are_built_once() -> None:
    assert textnorm._converter("t2s") is textnorm._converter("t2s")
    assert textnorm._converter("s2twp") is textnorm._converter("s2twp")

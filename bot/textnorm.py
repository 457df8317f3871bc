"""Text normalisation and locale detection for buyer messages.

Buyers type Simplified and Traditional Chinese, full-width characters, emoji and
English, often all in one message. Everything that compares text (the FAQ matcher)
works on one canonical form: NFKC, lower case, Simplified Chinese, letters and digits
only, single spaces. OpenCC converters are slow to build, so each is built once.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

__all__ = ["normalise", "detect_locale", "to_traditional", "to_simplified", "is_cjk"]

_SPACES = re.compile(r"\s+")


@functools.cache
def _converter(config: str) -> opencc.OpenCC:
    """One OpenCC converter per configuration, built on first use."""
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional -> Simplified (OpenCC 't2s'); Simplified text is returned unchanged."""
    return _converter("t2s").convert(text)


def to_traditional(text: str) -> str:
    """Simplified -> Traditional, Taiwan standard with Taiwan phrases (OpenCC 's2twp')."""
    return _converter("s2twp").convert(text)


def is_cjk(ch: str) -> bool:
    """True for CJK unified ideographs (the basic block and extension A)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@functools.lru_cache(maxsize=4096)
def _keep(ch: str) -> bool:
    """Letters, digits and combining marks are kept; punctuation, symbols, emoji are not."""
    return unicodedata.category(ch)[0] in "LNM"


def normalise(text: str) -> str:
    """NFKC, lower-case, Traditional->Simplified, emoji/punctuation stripped to spaces, whitespace collapsed.

    NFKC folds full-width letters, digits and punctuation (ＡＢＣ１２３，) to their
    ASCII forms; t2s makes 發貨 and 发货 the same string.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = to_simplified(text)
    text = "".join(ch if _keep(ch) else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def detect_locale(text: str) -> str:
    """'zh-TW' when the text is Traditional Chinese (t2s changes it), 'zh-CN' when it has CJK,
    'en' when it is mainly Latin letters; default 'zh-CN'.

    "Mainly Latin" counts Latin words against CJK characters, so "可以 refund 吗" stays
    Chinese while "where is my 快递 please" is English.
    """
    text = unicodedata.normalize("NFKC", text)
    cjk = sum(1 for ch in text if is_cjk(ch))
    latin_words = len(re.findall(r"[a-zA-Z]+", text))
    if cjk == 0:
        return "en" if latin_words else "zh-CN"
    if latin_words > cjk:
        return "en"
    simplified = to_simplified(text)
    if simplified != text:
        # Count changed characters both ways: a Simplified text that happens to contain
        # one character t2s rewrites is still Simplified if s2t would change more.
        t2s_changes = sum(1 for a, b in zip(text, simplified) if a != b)
        s2t = _converter("s2t").convert(text)
        s2t_changes = sum(1 for a, b in zip(text, s2t) if a != b)
        if t2s_changes >= s2t_changes:
            return "zh-TW"
    return "zh-CN"

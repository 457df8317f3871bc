"""The phrasebook: required ids, derived zh-TW, placeholder checks, the service standard's tone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.phrasebook import REQUIRED, Phrasebook, PhrasebookError
from tests.conftest import ROOT

BOOK = Phrasebook.load(ROOT / "phrasebook")


def test_both_languages_have_the_same_ids_and_every_required_phrase():
    assert set(BOOK.phrases["zh-CN"]) == set(BOOK.phrases["en"]) == set(BOOK.phrases["zh-TW"])
    assert set(REQUIRED) <= set(BOOK.phrases["zh-CN"])


def test_standard_categories_are_present_with_names():
    for category in ("welcome", "conversation", "bargaining", "payment", "logistics", "after_sales", "thanks", "review"):
        assert category in BOOK.categories["zh-CN"] and category in BOOK.categories["en"]
        assert any(p.category == category for p in BOOK.phrases["zh-CN"].values())
    assert BOOK.categories["zh-CN"]["welcome"] == "欢迎语"


def test_zh_tw_is_derived_from_zh_cn():
    assert BOOK.text("system.rephrase", "zh-TW") != BOOK.text("system.rephrase", "zh-CN")
    assert "們" in BOOK.text("system.welcome", "zh-TW", shop="x") or "您" in BOOK.text("system.welcome", "zh-TW", shop="x")


def test_tone_never_curt_and_no_blunt_no_when_bargaining():
    for phrase in BOOK.phrases["zh-CN"].values():
        bare = re.sub(r"[\W_~～]+", "", phrase.text)
        assert bare not in {"哦", "嗯", "嗯嗯", "好", "好的"}, phrase.id
        if phrase.category == "bargaining":
            assert "不" not in phrase.text, phrase.id


def test_placeholders_are_filled_and_unknown_values_render_empty():
    text = BOOK.text("system.welcome_named", "zh-CN", name="小美", shop="小二优选")
    assert "小美" in text and "{" not in text


def copy_book(tmp_path: Path) -> Path:
    folder = tmp_path / "book"
    shutil.copytree(ROOT / "phrasebook", folder, ignore=shutil.ignore_patterns("faq"))
    return folder


@pytest.mark.parametrize(("line", "error"), [
    (r"^rephrase = .*$", r"en\.toml: missing phrases system\.rephrase"),
    (r"^bad_review = \"Bad-review threat\"$", r"en\.toml: \[reasons\] bad_review: a label is required"),  # desk label
])
def test_missing_required_phrase_or_label_is_refused(tmp_path: Path, line: str, error: str):
    folder = copy_book(tmp_path)
    path = folder / "en.toml"
    path.write_text(re.sub(f"(?m){line}", "", path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PhrasebookError, match=error):
        Phrasebook.load(folder)


def test_unknown_placeholder_is_refused(tmp_path: Path):
    folder = copy_book(tmp_path)
    path = folder / "zh-CN.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("[phrases.thanks]", "[phrases.thanks]\nbad = \"谢谢{buyer}\""), encoding="utf-8")
    with pytest.raises(PhrasebookError, match=r"thanks\.bad: unknown placeholder \{buyer\}"):
        Phrasebook.load(folder)


"""FAQ gaps: near-duplicates are grouped by meaning, most frequent first; answered ones are left out."""

from __future__ import annotations

import tomllib

from bot.gaps import find_gaps, group_by_meaning, slug


def rows(*texts: str) -> list[tuple[str, str, float, str]]:
    return [(f"web:b{i}", t, 1000.0 + i, f"m{i}") for i, t in enumerate(texts)]


def test_near_duplicates_share_a_group_and_the_biggest_group_comes_first():
    gaps = find_gaps(rows("你们有实体店吗", "猫粮是进口的吗", "有实体店吗", "你们有没有实体店", "猫粮是不是进口的"),
                     answered=lambda text: False)
    assert [g.texts and len(g.texts) for g in gaps] == [3, 2]
    assert set(gaps[0].texts) == {"你们有实体店吗", "有实体店吗", "你们有没有实体店"}
    assert set(gaps[1].texts) == {"猫粮是进口的吗", "猫粮是不是进口的"}


def test_questions_the_faq_answers_now_are_left_out():
    gaps = find_gaps(rows("你们有实体店吗", "什么时候发货", "有实体店吗"), answered=lambda text: "发货" in text)
    assert [sorted(g.texts) for g in gaps] == [["你们有实体店吗", "有实体店吗"]]


def test_the_draft_is_a_valid_faq_entry_with_the_questions_prefilled():
    gap = find_gaps(rows("有实体店吗", "有实体店吗", "你们有实体店吗"), answered=lambda text: False)[0]
    gap.answers = ["亲，我们暂时只在网上销售哦😊"]
    entry = tomllib.loads(gap.draft())["faq"][0]
    assert entry["questions"] == ["有实体店吗", "你们有实体店吗"]  # distinct, most frequent first
    assert entry["answer"] == "亲，我们暂时只在网上销售哦😊" and entry["id"] == "you-shi-ti-dian-ma"
    assert gap.to_json()["count"] == 3


def test_an_embedding_groups_what_bigrams_cannot():
    # a stand-in for the understanding module: two wordings with no characters in common, one meaning
    vectors = {"包邮吗": [1.0, 0.0], "运费谁出": [0.96, 0.28], "能开发票吗": [0.0, 1.0]}
    groups = group_by_meaning(list(vectors), embed=lambda texts: [vectors[t] for t in texts])
    assert groups == [[0, 1], [2]]
    assert group_by_meaning(list(vectors)) == [[0], [1], [2]]


def test_slug_is_kebab_case():
    assert slug("When will it ship?") == "when-will-it-ship"
    assert slug("🙂") == "new-question"

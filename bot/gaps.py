"""FAQ gaps: what buyers asked that the bot could not answer, grouped by meaning.

The commit records each unanswered buyer question (bot.reports marks it); here they are grouped,
most frequent first, each group with examples, a drafted FAQ entry to paste into the FAQ file, and
the answers agents gave to those questions afterwards (a starting point for the entry's answer).

Grouping is a seam: `embed(texts)` returns one L2-normalised vector per text (the understanding
module's sentence embeddings); without it, a character-bigram vector stands in. Identical texts are
grouped once, so the cost grows with the distinct wordings, not the message count.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pypinyin import lazy_pinyin

from bot.textnorm import normalise

Embed = Callable[[list[str]], Any]  # (n, d) array-like of L2-normalised rows
SIMILAR = 0.55        # cosine to a group's centre to join it (bigram vectors)
SIMILAR_EMBED = 0.68  # the same with sentence embeddings (paraphrases score 0.7-0.95, other questions < 0.6)
MAX_TEXTS = 1000      # newest unanswered messages considered per request
MAX_EXAMPLES = 8


@dataclass
class Gap:
    """One group of unanswered messages with the same meaning."""

    texts: list[str] = field(default_factory=list)        # every message, newest first
    refs: list[tuple[str, str]] = field(default_factory=list)  # (conversation id, message id)
    answers: list[str] = field(default_factory=list)

    @property
    def examples(self) -> list[str]:
        """Distinct wordings, most frequent first."""
        return [t for t, _ in Counter(self.texts).most_common(MAX_EXAMPLES)]

    def draft(self) -> str:
        """A [[faq]] entry for the FAQ file, questions prefilled; the answer is a human's, when there is one."""
        lines = ["[[faq]]", f"id = {json.dumps(slug(self.examples[0]))}",
                 "questions = [" + ", ".join(json.dumps(q, ensure_ascii=False) for q in self.examples) + "]"]
        if self.answers:
            lines.append(f"answer = {json.dumps(self.answers[0], ensure_ascii=False)}  # an agent's answer: check it")
        else:
            lines.append('answer = ""  # write the shop\'s answer here')
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"count": len(self.texts), "examples": self.examples, "draft": self.draft(), "answers": self.answers}


def slug(text: str) -> str:
    """A kebab-case id from a question: pinyin for Chinese, words for the rest."""
    words = [w for w in re.split(r"[^a-z0-9]+", " ".join(lazy_pinyin(normalise(text))).lower()) if w]
    return "-".join(words[:5]) or "new-question"


def _bigrams(text: str) -> dict[str, float]:
    norm = normalise(text)
    feats: Counter[str] = Counter()
    for part in norm.split():
        if part.isascii():
            feats[part] += 1
        else:
            feats.update(part[i:i + 2] for i in range(len(part) - 1))
            if len(part) == 1:
                feats[part] += 1
    length = math.sqrt(sum(v * v for v in feats.values())) or 1.0
    return {k: v / length for k, v in feats.items()}


def _dot(a: dict[Any, float], b: dict[Any, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def group_by_meaning(texts: Sequence[str], embed: Embed | None = None) -> list[list[int]]:
    """Indexes of `texts` grouped by meaning: each text joins the group whose centre (the sum of its
    members) is closest, when close enough; otherwise it starts a group. Identical texts are one."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return []
    if embed is not None:
        vectors = [dict(enumerate(float(x) for x in row)) for row in embed(distinct)]
        threshold = SIMILAR_EMBED
    else:
        vectors, threshold = [_bigrams(t) for t in distinct], SIMILAR
    centres: list[dict[str | int, float]] = []
    members: list[list[str]] = []
    for text, vec in zip(distinct, vectors):
        best, score = -1, 0.0
        for g, centre in enumerate(centres):
            s = _dot(vec, centre) / (math.sqrt(sum(v * v for v in centre.values())) or 1.0)
            if s > score:
                best, score = g, s
        if best >= 0 and score >= threshold:
            members[best].append(text)
            for k, v in vec.items():
                centres[best][k] = centres[best].get(k, 0.0) + v
        else:
            members.append([text])
            centres.append(dict(vec))
    where = {t: g for g, group in enumerate(members) for t in group}
    out: list[list[int]] = [[] for _ in members]
    for i, t in enumerate(texts):
        out[where[t]].append(i)
    return out


def find_gaps(rows: Sequence[tuple[str, str, float, str]], answered: Callable[[str], bool],
              embed: Embed | None = None) -> list[Gap]:
    """Group unanswered messages (conversation id, text, time, message id); drop those the FAQ answers now."""
    rows = sorted(rows, key=lambda r: r[2], reverse=True)[:MAX_TEXTS]
    open_ = {text: not answered(text) for text in dict.fromkeys(r[1] for r in rows)}  # each wording once
    rows = [r for r in rows if open_[r[1]]]
    gaps = []
    for members in group_by_meaning([r[1] for r in rows], embed):
        gap = Gap()
        for i in members:
            gap.texts.append(rows[i][1])
            gap.refs.append((rows[i][0], rows[i][3]))
        gaps.append(gap)
    gaps.sort(key=lambda g: len(g.texts), reverse=True)
    return gaps

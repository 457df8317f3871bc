"""Built-in intents as example sentences (phrasebook/intents.toml), and a nearest-example classifier.

The same classifier serves any labelled example set: the bot's intents here, the desk's reply
coaching with its own examples (`Understanding.classifier`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.encoder import Encoder
from bot.textnorm import normalise

DEFAULT_INTENTS_PATH: Path = Path(__file__).resolve().parent.parent / "phrasebook" / "intents.toml"


@dataclass(frozen=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    handoff: str | None = None


@dataclass(frozen=True)
class IntentBook:
    """phrasebook/intents.toml: example sentences per intent, and negation cues."""

    intents: tuple[Intent, ...]
    negation_cues: tuple[str, ...] = ()
    question_cues: tuple[str, ...] = ()
    negative_cues: tuple[str, ...] = ()
    threat_cues: tuple[str, ...] = ()
    person_words: tuple[str, ...] = ("人工", "客服", "真人", "活人", "human", "agent", "person", "someone", "representative")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_INTENTS_PATH) -> IntentBook:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        intents = tuple(
            Intent(name, tuple(t["examples"]), t.get("handoff"))
            for name, t in data.get("intents", {}).items()
        )
        return cls(
            intents,
            negation_cues=tuple(data.get("negation", {}).get("cues", ())),
            question_cues=tuple(data.get("question", {}).get("cues", ())),
            negative_cues=tuple(data.get("polarity", {}).get("negative", ())),
            threat_cues=tuple(data.get("polarity", {}).get("threat", ())),
        )


@dataclass(frozen=True)
class Label:
    """A classifier's verdict: the closest label and how close (cosine, -1..1)."""

    label: str | None
    score: float


class Classifier:
    """Nearest examples in the embedding space: `classify(text)` -> the closest label above a floor."""

    def __init__(self, encoder: Encoder, examples: Mapping[str, Sequence[str]], floor: float = 0.6):
        self.encoder = encoder
        self.floor = floor
        self.labels = tuple(label for label, texts in examples.items() for _ in texts)
        self.vectors = encoder.encode([t for texts in examples.values() for t in texts])
        # examples are stored label by label: each label's best is a segmented maximum
        self._names = tuple(label for label, texts in examples.items() if texts)
        counts = np.array([len(texts) for texts in examples.values() if texts], dtype=np.int64)
        self._starts = np.cumsum(counts) - counts

    def scores(self, vectors: np.ndarray) -> dict[str, float]:
        """Best similarity per label for any of the given message vectors (whole message, clauses)."""
        if not self._names:
            return {}
        sims = (vectors @ self.vectors.T).max(axis=0) if len(vectors) else np.zeros(len(self.labels), dtype=np.float32)
        return dict(zip(self._names, np.maximum.reduceat(sims, self._starts).tolist()))

    def similarities(self, text: str) -> dict[str, float]:
        """Best similarity per label for one text."""
        return self.scores(self.encoder.encode([text]))

    def classify(self, text: str) -> Label:
        best = self.similarities(text)
        if not best:
            return Label(None, 0.0)
        label, score = max(best.items(), key=lambda kv: kv[1])
        return Label(label if score >= self.floor else None, score)


def cue_pattern(cues: Sequence[str]) -> re.Pattern[str] | None:
    """Chinese cues anywhere, Latin ones as whole words."""
    if not cues:
        return None
    parts = [rf"\b{re.escape(c)}\b" if c.isascii() and c.isalpha() else re.escape(normalise(c) or c) for c in cues]
    return re.compile("|".join(parts))


def negation_pattern(cues: Sequence[str], targets: Sequence[str]) -> re.Pattern[str] | None:
    """A negation cue shortly before a word for a person: 不用转人工, 不需要客服, no need for an agent."""
    if not cues:
        return None
    cue = "|".join(re.escape(normalise(c).replace(" ", "")) for c in sorted(cues, key=len, reverse=True))
    target = "|".join(re.escape(normalise(w)) for w in targets)
    return re.compile(f"(?:{cue}).{{0,6}}(?:{target})")

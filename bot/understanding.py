"""Understanding a buyer message: one module, one interface, for the FAQ and the built-in intents.

    Understanding.read(text) -> Reading
        decision     "intent" | "answer" | "suggest" | "refuse"
        intent       a built-in intent ("human", "dispute_product", …, "thanks", "ok", …) or None
        handoff      the handoff reason of that intent ("request", "product", …) or None
        answer       the FAQ entry to answer with (decision "answer")
        suggestions  up to three FAQ entries to offer as "您是不是想问" (decision "suggest")

Two views of the message are combined, because they fail on different messages:
- lexical (bot/faq.py): characters, bigrams, pinyin twins and a general lexicon — strong on typos,
  short questions and exact product words; matched against the questions and the answer's phrases;
- meaning (bot/encoder.py, a multilingual sentence-embedding model run offline): strong on
  paraphrases, English, Traditional Chinese and chatty text; matched against the questions and the
  answer. A long message is also read clause by clause, so the question inside is not diluted.

Intents are example sentences (phrasebook/intents.toml) in the same embedding space as the FAQ: a
message belongs to an intent only when it is closer to that intent's examples than to any FAQ
question, by a margin. bot/decision.py turns the signals into a decision, calibrated to never give a
confident wrong answer; its thresholds were chosen on tuning data only (bench/faq_tune.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bot.decision import SMALL_TALK, Decision, Signals, Thresholds, decide
from bot.encoder import Encoder
from bot.faq import DEFAULT_LEXICON_PATH, FaqEntry, FaqMatcher, Lexicon
from bot.intents import Classifier, IntentBook, cue_pattern, negation_pattern
from bot.textnorm import normalise

__all__ = ["Reading", "Understanding"]

CANDIDATES = 20  # entries scored lexically per message (on a larger FAQ the meaning index picks them)
_CLAUSES = re.compile(r"[，,。.！!？?；;：:\n~～、…]+|\s{2,}")
_ANSWER_SPLIT = re.compile(r"[。；;!！?？~～,，]+")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Reading:
    """What a buyer message means to the bot."""

    text: str
    decision: Decision
    intent: str | None = None
    handoff: str | None = None
    answer: FaqEntry | None = None
    suggestions: tuple[FaqEntry, ...] = ()
    score: float = 0.0                      # the best FAQ entry's score (0..1)
    candidate: FaqEntry | None = None       # the best FAQ entry, answered or not

    @property
    def small_talk(self) -> bool:
        return self.intent in SMALL_TALK


class Understanding:
    """The bot's reading of buyer messages, built once per knowledge base (embeddings computed at
    load, cached by content in the process and, with an encoder cache_dir, on disk)."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        lexicon: Lexicon | None = None,
        intents: IntentBook | None = None,
        encoder: Encoder | None = None,
        thresholds: Thresholds = Thresholds(),
    ) -> None:
        self.entries = tuple(entries)
        self.encoder = encoder or Encoder()
        self.thresholds = thresholds
        lexicon = lexicon if lexicon is not None else Lexicon.load(DEFAULT_LEXICON_PATH)
        self.lexical = FaqMatcher(self.entries, lexicon)
        self._answer_words = FaqMatcher(tuple(_answer_as_questions(e) for e in self.entries), lexicon)
        questions = [(i, q) for i, e in enumerate(self.entries) for q in e.questions]
        self._questions = self.encoder.encode_cached([q for _, q in questions])
        self._owner = np.array([i for i, _ in questions], dtype=np.int64)
        self._answers = self.encoder.encode_cached([e.answer for e in self.entries])
        self.intents = intents if intents is not None else IntentBook.load()
        self.handoffs: Mapping[str, str | None] = {i.name: i.handoff for i in self.intents.intents}
        self._intent_model = Classifier(self.encoder, {i.name: i.examples for i in self.intents.intents})
        self._negation = negation_pattern(self.intents.negation_cues, self.intents.person_words)
        self._question = cue_pattern(self.intents.question_cues)
        self._negative = cue_pattern(self.intents.negative_cues)
        self._threat = cue_pattern(self.intents.threat_cues)
        # Several handlers (and the desk) ask about the same message in one turn: read it once.
        self._cached_read = functools.lru_cache(maxsize=1024)(self._read)

    # ── the one interface ──

    def read(self, text: str) -> Reading:
        """What the message means: an intent, an answer, suggestions, or nothing."""
        return self._cached_read(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of texts (for grouping by meaning, e.g. FAQ gaps)."""
        return self.encoder.encode(texts)

    def classifier(self, examples: Mapping[str, Sequence[str]], floor: float = 0.6) -> Classifier:
        """A nearest-example classifier over any labelled examples (coaching uses this)."""
        return Classifier(self.encoder, examples, floor)

    def signals(self, text: str) -> Signals:
        """Everything the decision looks at (bench/faq_tune.py replays these with other thresholds)."""
        norm = normalise(text)
        n = len(self.entries)
        if not _LETTER.search(norm):
            empty = np.zeros(n, dtype=np.float32)
            return Signals(True, empty, empty, empty, empty, empty, empty, {}, {}, False, False, False)
        clauses = [c for c in (normalise(p) for p in _CLAUSES.split(text) if p.strip()) if c]
        vectors = self.encoder.encode([norm] + (clauses if len(clauses) > 1 else []))
        q_whole, q_clause = self._per_entry(vectors @ self._questions.T)
        answers = vectors @ self._answers.T
        a_whole = answers[0]
        a_clause = answers[1:].max(axis=0) if len(vectors) > 1 else np.full(n, -1.0, dtype=np.float32)
        only = None if n <= CANDIDATES else np.argpartition(-np.maximum(q_whole, a_whole), CANDIDATES)[:CANDIDATES].tolist()
        return Signals(
            empty=False,
            question_whole=q_whole, question_clause=q_clause, answer_whole=a_whole, answer_clause=a_clause,
            lexical=self._lexical(self.lexical, text, only), lexical_answer=self._lexical(self._answer_words, text, only),
            intents_whole=self._intent_model.scores(vectors[:1]),
            intents_clause=self._intent_model.scores(vectors[1:]) if len(vectors) > 1 else {},
            asks=self._question is None or bool(self._question.search(norm)),
            negative=self._negative is not None and bool(self._negative.search(norm)),
            declines_person=self._negation is not None and bool(self._negation.search(norm.replace(" ", ""))),
            threatens=self._threat is not None and bool(self._threat.search(norm)),
        )

    # ── inside ──

    def _read(self, text: str) -> Reading:
        verdict = decide(self.signals(text), self.thresholds, self.handoffs)
        entry = (lambda i: self.entries[i] if i is not None else None)
        return Reading(
            text, verdict.decision, intent=verdict.intent,
            handoff=self.handoffs.get(verdict.intent) if verdict.decision == "intent" and verdict.intent else None,
            answer=entry(verdict.answer), suggestions=tuple(self.entries[i] for i in verdict.suggestions),
            score=verdict.score, candidate=entry(verdict.top),
        )

    def _per_entry(self, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Question cosines -> per entry: best for the whole message (row 0), best for any clause."""
        n = len(self.entries)
        whole = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(whole, self._owner, sims[0])
        clause = np.full(n, -1.0, dtype=np.float32)
        if len(sims) > 1:
            np.maximum.at(clause, self._owner, sims[1:].max(axis=0))
        return whole, clause

    def _lexical(self, matcher: FaqMatcher, text: str, only: list[int] | None) -> np.ndarray:
        out = np.zeros(len(self.entries), dtype=np.float32)
        for i, s in matcher.scores(text, only).items():
            out[i] = min(s, 1.0)
        return out


def _answer_as_questions(entry: FaqEntry) -> FaqEntry:
    """The entry with its answer's phrases as questions: buyers often use the answer's words
    (顺丰, EMS, 新疆) rather than the question's."""
    phrases = tuple(p for p in _ANSWER_SPLIT.split(entry.answer) if len(p.strip()) > 1)
    return FaqEntry(id=entry.id, questions=phrases or (entry.answer,), answer=entry.answer)

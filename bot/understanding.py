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

from bot.adapter import Adapter
from bot.decision import SMALL_TALK, Decision, Signals, Thresholds, decide
from bot.encoder import Encoder
from bot.faq import DEFAULT_LEXICON_PATH, FaqEntry, FaqMatcher, Lexicon
from bot.intents import Classifier, IntentBook, cue_pattern, negation_pattern
from bot.textnorm import normalise

__all__ = ["Reading", "Understanding"]

CANDIDATES = 20  # entries scored lexically per message (on a larger FAQ the meaning index picks them)
FULL_SCAN = 2000  # up to this many entries every question is compared with the message; beyond, ...
POOL = 256        # ... only the questions of the entries whose gist (centroid) is closest
ADAPTED = 64      # entries whose adapted meaning is compared (the closest in plain meaning)
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
        full_scan: int = FULL_SCAN,
        pool: int = POOL,
        adapter: Adapter | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self.encoder = encoder or Encoder()
        self.thresholds = thresholds
        self._full_scan, self._pool_size = full_scan, pool
        lexicon = lexicon if lexicon is not None else Lexicon.load(DEFAULT_LEXICON_PATH)
        self.lexical = FaqMatcher(self.entries, lexicon)
        self._answer_words = FaqMatcher(tuple(_answer_as_questions(e) for e in self.entries), lexicon)
        self._questions = self.encoder.encode_cached([q for e in self.entries for q in e.questions])
        # questions are stored entry by entry (every entry has at least one): where each one begins
        self._counts = np.array([len(e.questions) for e in self.entries], dtype=np.int64)
        self._starts = np.cumsum(self._counts) - self._counts
        self._answers = self.encoder.encode_cached([e.answer for e in self.entries])
        summed = np.add.reduceat(self._questions, self._starts, axis=0) if self.entries else self._answers
        self._gists = _unit(summed + self._answers)  # an entry's gist: its questions and answer together
        self.adapter = adapter if adapter is not None else Adapter.load()
        self._questions_adapted = self.adapter.apply(self._questions)  # for ranking suggestions only
        self._answers_adapted = self.adapter.apply(self._answers)
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
            return Signals(True, empty, empty, empty, empty, empty, empty, empty, empty, {}, {}, False, False, False)
        # clauses without a letter (an order number, an emoji) mean nothing to the model
        clauses = [c for c in (normalise(p) for p in _CLAUSES.split(text) if p.strip()) if _LETTER.search(c)]
        vectors = self.encoder.encode([norm] + (clauses if len(clauses) > 1 else []))
        pool = None
        if n > self._full_scan:  # a large FAQ: compare the questions of the entries whose gist is closest
            pool = np.argpartition(-(self._gists @ vectors[0]), min(self._pool_size, n - 1))[: self._pool_size]
        q_whole, q_clause, a_whole, a_clause = self._meaning(vectors, pool)
        closest = np.maximum(q_whole, a_whole)
        only = None if n <= CANDIDATES else np.argpartition(-closest, CANDIDATES)[:CANDIDATES].tolist()
        # the adapted meaning judges the unsure messages (offer or not, and what): compared with the
        # entries closest in plain meaning only (the rest get -1)
        near = None if n <= ADAPTED else np.argpartition(-closest, ADAPTED)[:ADAPTED]
        adapted = self._meaning(self.adapter.apply(vectors[:1]), near, self._questions_adapted, self._answers_adapted)
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
            adapted_question=adapted[0], adapted_answer=adapted[2],
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

    def _meaning(self, vectors: np.ndarray, pool: np.ndarray | None, questions: np.ndarray | None = None,
                 answers: np.ndarray | None = None) -> list[np.ndarray]:
        """Cosines per entry — best question for the whole message and for any clause, the answer
        likewise — over every entry, or over a pool (the rest get -1); against the plain vectors of
        the questions and answers, or the ones given (the adapted ones).
        Questions are stored entry by entry, so a segmented maximum takes each entry's best."""
        n = len(self.entries)
        questions = self._questions if questions is None else questions
        answers = self._answers if answers is None else answers
        if pool is None:
            starts = self._starts
        else:
            counts = self._counts[pool]
            starts = np.cumsum(counts) - counts
            rows = np.repeat(self._starts[pool] - starts, counts) + np.arange(int(counts.sum()))
            questions, answers = questions[rows], answers[pool]
        q_sims, a_sims = vectors @ questions.T, vectors @ answers.T
        clauses = len(vectors) > 1
        none = np.full(len(answers), -1.0, dtype=np.float32)
        parts = [
            np.maximum.reduceat(q_sims[0], starts),
            np.maximum.reduceat(q_sims[1:].max(axis=0), starts) if clauses else none,
            a_sims[0], a_sims[1:].max(axis=0) if clauses else none,
        ]
        if pool is None:
            return parts
        full = [np.full(n, -1.0, dtype=np.float32) for _ in parts]
        for out, part in zip(full, parts):
            out[pool] = part
        return full

    def _lexical(self, matcher: FaqMatcher, text: str, only: list[int] | None) -> np.ndarray:
        out = np.zeros(len(self.entries), dtype=np.float32)
        for i, s in matcher.scores(text, only).items():
            out[i] = min(s, 1.0)
        return out


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _answer_as_questions(entry: FaqEntry) -> FaqEntry:
    """The entry with its answer's phrases as questions: buyers often use the answer's words
    (顺丰, EMS, 新疆) rather than the question's."""
    phrases = tuple(p for p in _ANSWER_SPLIT.split(entry.answer) if len(p.strip()) > 1)
    return FaqEntry(id=entry.id, questions=phrases or (entry.answer,), answer=entry.answer)

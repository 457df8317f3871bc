"""FAQ files and the FAQ matcher.

The matcher answers only when it is confident: a wrong answer is much worse than a
refusal (the bot then asks the buyer to rephrase and offers a human).

How a message is scored:
1. split into clauses at punctuation (a long message usually holds one question, at the end);
2. each clause is normalised (NFKC, lower case, Traditional -> Simplified, no emoji), then one
   pass over phrasebook/lexicon.toml drops fillers (亲, 在吗) and stop words (的, the) and
   rewrites synonyms to a canonical word (啥 -> 什么, 优惠卷 -> 优惠券, refund -> 退款);
3. features: Chinese characters and bigrams (never across a space, so lexicon words act as
   word boundaries) and English words; each has a pinyin twin, so a homophone typo
   (退宽 / 退款) still matches, at a small discount;
4. a feature weighs its IDF over FAQ entries (specific words count, common ones little);
   unigrams, lexicon "weak" words (什么, 几点, product names) and numbers weigh less, and a
   feature no question has counts as evidence of another topic;
5. a window (each clause, each pair of adjacent clauses, the whole message) scores an entry
   by a blend of the weighted Dice overlap with its closest question variant and the share
   of the window its vocabulary explains, both smoothed so short vague texts stay low;
   a window that is only part of the message is discounted (except the last clause);
6. answer only if the best entry reaches the threshold AND leads the best *other* entry by
   the margin; otherwise refuse (entry None) and still report the best score.
This is the lexical half of understanding (bot/understanding.py blends it with meaning).
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypinyin import lazy_pinyin

from bot.textnorm import is_cjk, normalise, to_traditional

__all__ = [
    "DEFAULT_LEXICON_PATH",
    "FrozenMap",
    "FaqEntry",
    "FaqFileError",
    "FaqMatch",
    "FaqMatcher",
    "Lexicon",
    "load_faq_files",
]

DEFAULT_LEXICON_PATH: Path = Path(__file__).resolve().parent.parent / "phrasebook" / "lexicon.toml"

_ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TRADITIONAL_LOCALES = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")


# ───────────────────────────── entries and files ─────────────────────────────


class FrozenMap(Mapping[str, str]):
    """A read-only, hashable, picklable str -> str mapping (FaqEntry.answers)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[type, tuple[dict[str, str]]]:
        return (FrozenMap, (self._data,))


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ entry: the ways buyers ask (questions) and the answer in each locale."""

    id: str
    questions: tuple[str, ...]
    answer: str
    answers: Mapping[str, str] = field(default_factory=FrozenMap)
    group: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # frozen all the way down, whatever the caller passed (a dict, lists)
        object.__setattr__(self, "answers", FrozenMap(self.answers))
        object.__setattr__(self, "questions", tuple(self.questions))
        object.__setattr__(self, "tags", tuple(self.tags))

    def answer_for(self, locale: str) -> str:
        """Exact locale if present; zh-TW (and zh-HK / zh-Hant) derived from the zh answer with
        to_traditional(); 'en' falls back to answers['en'] if present else the default answer."""
        if locale in self.answers:
            return self.answers[locale]
        lower = locale.lower()
        if lower.startswith(_TRADITIONAL_LOCALES):
            return to_traditional(self.answer)
        if lower.startswith("en") and "en" in self.answers:
            return self.answers["en"]
        return self.answer


@dataclass(frozen=True)
class FaqMatch:
    """The matcher's verdict. entry is None when it is not confident enough to answer;
    score is the best candidate's score either way, candidate that best candidate."""

    query: str
    entry: FaqEntry | None
    score: float
    candidate: FaqEntry | None = None

    @property
    def id(self) -> str | None:
        return self.entry.id if self.entry is not None else None


class FaqFileError(ValueError):
    """A FAQ file that cannot be used; the message names the file and the key,
    e.g. 'faq.toml: faq[3].id: duplicate id "refund"' (faq[i] counts from 0)."""


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _entry_from_table(name: str, index: int, table: Any) -> FaqEntry:
    """Validate one [[faq]] table; every error names the file and the key."""
    where = f"{name}: faq[{index}]"
    if not isinstance(table, dict):
        raise FaqFileError(f"{where}: must be a table ([[faq]])")
    allowed = {"id", "questions", "answer", "answers", "group", "tags"}
    for key in table:
        if key not in allowed:
            raise FaqFileError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in ("id", "questions", "answer"):
        if key not in table:
            raise FaqFileError(f"{where}.{key}: missing")
    entry_id = table["id"]
    if not isinstance(entry_id, str) or not _ID_RE.match(entry_id):
        raise FaqFileError(f'{where}.id: must be a kebab-case string like "shipping-time", got {entry_id!r}')
    questions = table["questions"]
    if not _str_list(questions) or not questions or not all(q.strip() for q in questions):
        raise FaqFileError(f"{where}.questions: must be a non-empty list of non-empty strings")
    answer = table["answer"]
    if not isinstance(answer, str) or not answer.strip():
        raise FaqFileError(f"{where}.answer: must be a non-empty string")
    answers = table.get("answers", {})
    if not isinstance(answers, dict):
        raise FaqFileError(f"{where}.answers: must be a table of locale = answer strings")
    for locale, text in answers.items():
        if not _LOCALE_RE.match(locale):
            raise FaqFileError(f'{where}.answers.{locale}: not a locale code like "en" or "zh-TW"')
        if not isinstance(text, str) or not text.strip():
            raise FaqFileError(f"{where}.answers.{locale}: must be a non-empty string")
    group = table.get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        raise FaqFileError(f"{where}.group: must be a non-empty string")
    tags = table.get("tags", [])
    if not _str_list(tags):
        raise FaqFileError(f"{where}.tags: must be a list of strings")
    return FaqEntry(
        id=entry_id,
        questions=tuple(q.strip() for q in questions),
        answer=answer.strip(),
        answers=FrozenMap({k: v.strip() for k, v in answers.items()}),
        group=group,
        tags=tuple(tags),
    )


def load_faq_files(paths: Sequence[str | Path]) -> tuple[FaqEntry, ...]:
    """Load and validate FAQ files (only [[faq]] tables at top level; ids unique across files).

    Raises FaqFileError naming the file and the key for any problem, including a missing
    file or a TOML syntax error.
    """
    entries: list[FaqEntry] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise FaqFileError(f"{name}: file not found") from None
        except OSError as exc:
            raise FaqFileError(f"{name}: cannot read file: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise FaqFileError(f"{name}: TOML syntax error: {exc}") from None
        except UnicodeDecodeError:
            raise FaqFileError(f"{name}: not UTF-8 text") from None
        for key in data:
            if key != "faq":
                raise FaqFileError(f"{name}: {key}: unknown top-level key (only [[faq]] tables are allowed)")
        tables = data.get("faq")
        if not isinstance(tables, list) or not tables:
            raise FaqFileError(f"{name}: faq: no [[faq]] entries")
        for index, table in enumerate(tables):
            entry = _entry_from_table(name, index, table)
            if entry.id in seen:
                first = seen[entry.id]
                origin = "" if first == name else f" (first defined in {first})"
                raise FaqFileError(f'{name}: faq[{index}].id: duplicate id "{entry.id}"{origin}')
            seen[entry.id] = name
            entries.append(entry)
    return tuple(entries)


# ───────────────────────────── lexicon ─────────────────────────────


@dataclass(frozen=True)
class Lexicon:
    """Language data for the matcher (phrasebook/lexicon.toml), kept out of the code.

    In one pass over the text, longest word first: fillers (亲, 在吗) and stopwords (的, the)
    are removed and synonyms rewritten variant -> canonical (啥 -> 什么, refund -> 退款; a
    synonym wins over a filler or stop word spelt the same). Weak words (什么, 几点, product
    names) count less, so that a message made only of them cannot match.
    """

    fillers: tuple[str, ...] = ()
    synonyms: Mapping[str, str] = field(default_factory=FrozenMap)  # variant -> canonical
    stopwords: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read the lexicon file; every word is normalised like buyer text."""
        name = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise FaqFileError(f"{name}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise FaqFileError(f"{name}: TOML syntax error: {exc}") from None
        lists = ("fillers", "stopwords", "weak")
        for key in data:
            if key not in (*lists, "synonyms"):
                raise FaqFileError(f"{name}: {key}: unknown key")
        for key in lists:
            if not _str_list(data.get(key, [])):
                raise FaqFileError(f"{name}: {key}: must be a list of strings")
        synonyms: dict[str, str] = {}
        table = data.get("synonyms", {})
        if not isinstance(table, dict):
            raise FaqFileError(f"{name}: synonyms: must be a table of canonical = [variants]")
        for canonical, variants in table.items():
            if not _str_list(variants):
                raise FaqFileError(f"{name}: synonyms.{canonical}: must be a list of strings")
            canon = normalise(canonical)
            if not canon:
                raise FaqFileError(f"{name}: synonyms.{canonical}: the canonical word is empty once normalised")
            for variant in variants:
                key = normalise(variant)
                if not key:
                    continue  # only punctuation or emoji: nothing to match
                if key in synonyms and synonyms[key] != canon:
                    raise FaqFileError(
                        f'{name}: synonyms.{canonical}: "{variant}" is already a variant of "{synonyms[key]}"'
                    )
                synonyms[key] = canon

        def words(key: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(w for w in (normalise(x) for x in data.get(key, [])) if w))

        return cls(
            fillers=words("fillers"),
            synonyms=FrozenMap(synonyms),
            stopwords=words("stopwords"),
            weak=words("weak"),
        )


def _alternation(words: Sequence[str]) -> str:
    """A regex matching any of words, longest first; words that start or end with a Latin letter
    only match as whole words ("sf" not inside "sofa"). Built as a trie: hundreds of words
    cost about as much as one."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for word in set(words):
        key = (word[0].isascii() and word[0].isalpha(), word[-1].isascii() and word[-1].isalpha())
        groups.setdefault(key, []).append(word)
    parts = []
    for (starts, ends), group in sorted(groups.items()):
        parts.append((r"(?<![a-z])" if starts else "") + f"(?:{_trie(group)})" + (r"(?![a-z])" if ends else ""))
    return "|".join(parts)


def _trie(words: Sequence[str]) -> str:
    """Regex for a set of literal words as a trie; greedy optional groups make it longest-match."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        body = "|".join(alternatives)
        if "" in node:
            return f"(?:{body})?"
        return body if len(alternatives) == 1 else f"(?:{body})"

    return build(root)


@functools.lru_cache(maxsize=8192)
def _pinyin(ch: str) -> str:
    """Toneless default-reading pinyin of one character; per character so typos compare alike."""
    return lazy_pinyin(ch)[0]


_CLAUSE_SPLIT = re.compile(r"[,.!?;:，。！？；：、~～…\n\r\t]+")
_TOKEN = re.compile(r"\d+|[^\W\d_]+")


# ───────────────────────────── matcher ─────────────────────────────


class FaqMatcher:
    """Scores a buyer message against every question variant and answers only when sure.

    threshold: minimum score (0..1) of the best entry.
    margin: minimum lead of the best entry over the best *different* entry.
    """

    UNIGRAM = 0.5  # a single character says less than a bigram or an English word
    WEAK = 0.2  # lexicon "weak" words (什么, 几点) help rank but cannot carry a match alone
    WEAK_PAIR = 0.6  # a bigram of one weak and one other character ("能换", "以退")
    NUMBER = 0.3  # any number is one feature "#"; "165" vs "158" should barely matter
    UNKNOWN = 1.5  # a feature no FAQ question has is evidence of another topic
    SMOOTH = 2.0  # added to both denominators: short, vague texts cannot score high
    PINYIN = 0.9  # a match by pinyin only (a homophone typo) counts a little less
    COVER = 0.7  # share of the score from "how much of the message the entry explains"
    PART = 0.2  # exponent of the penalty on a window that is only part of the message
    COVER_SMOOTH = 5.0  # smoothing of that share: one matching word is not an explanation
    MAX_CHARS = 400  # only the end of a very long message is read (that is where the question is)

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        lexicon: Lexicon | None = None,
        threshold: float = 0.42,
        margin: float = 0.05,
    ) -> None:
        self.entries = tuple(entries)
        self.lexicon = lexicon if lexicon is not None else Lexicon.load(DEFAULT_LEXICON_PATH)
        self.threshold = threshold
        self.margin = margin
        lex = self.lexicon
        # One pass rewrites the text: fillers and stop words become spaces, synonyms their
        # canonical word. Longest match first, so a word protects what is inside it: the
        # filler 呗 is not removed from 花呗, the stop word 的 not from 真的假的.
        rewrite = {w: " " for w in (*lex.fillers, *lex.stopwords)}
        for variant, canonical in lex.synonyms.items():
            rewrite[variant] = rewrite[canonical] = f" {canonical} "
        self._rewrite_table = rewrite
        self._rewrite = re.compile(_alternation(list(rewrite))) if rewrite else None
        # Weak features: the n-grams inside weak words, and any bigram of two weak characters.
        weak_units = [_units(w) for w in lex.weak]
        self._weak_chars = frozenset(units[0] for units in weak_units if len(units) == 1)
        self._weak_grams = frozenset(f for units in weak_units for f, _ in _grams(units))

        # Index the question variants. Each feature is a character n-gram (or an English word)
        # and has a pinyin twin; IDF is computed over entries for both.
        self._variant_entry: list[int] = []
        variant_feats: list[list[tuple[str, str | None]]] = []
        for i, entry in enumerate(self.entries):
            for question in entry.questions:
                feats = self._features(question)
                if feats:
                    variant_feats.append(feats)
                    self._variant_entry.append(i)
        n = max(len(self.entries), 1)
        df_char: dict[str, set[int]] = {}
        df_pinyin: dict[str, set[int]] = {}
        self._char_postings: dict[str, set[int]] = {}
        self._pinyin_postings: dict[str, list[int]] = {}
        for v, feats in enumerate(variant_feats):
            entry = self._variant_entry[v]
            for f, pf in feats:
                df_char.setdefault(f, set()).add(entry)
                self._char_postings.setdefault(f, set()).add(v)
                if pf is not None:
                    df_pinyin.setdefault(pf, set()).add(entry)
                    postings = self._pinyin_postings.setdefault(pf, [])
                    if not postings or postings[-1] != v:
                        postings.append(v)
        self._base_cache = {f: self._base_uncached(f) for f in df_char}  # bounded: index features only
        self._char_idf = {f: math.log((n + 1) / len(es)) for f, es in df_char.items()}
        self._pinyin_idf = {f: math.log((n + 1) / len(es)) for f, es in df_pinyin.items()}
        self._variant_mass_smoothed = [
            sum(self._base(f) * self._char_idf[f] for f, _ in feats) + self.SMOOTH for feats in variant_feats
        ]
        # a feature's contribution depends only on the index: remember the recent ones
        self._contribution = functools.lru_cache(maxsize=16384)(self._contribution_uncached)

    # ── text → features ──

    def _clean(self, text: str) -> str:
        """normalise, then drop fillers and stop words and rewrite synonyms."""
        text = normalise(text)
        if self._rewrite is not None:
            table = self._rewrite_table
            text = self._rewrite.sub(lambda m: table[m.group(0)], text)
        return text

    def _features(self, text: str) -> list[tuple[str, str | None]]:
        """(feature, pinyin twin) pairs of the cleaned text, without repeats."""
        return list(dict.fromkeys(_grams(_units(self._clean(text)))))

    def _base(self, feat: str) -> float:
        """Weight before IDF: unigrams count half, numbers and weak words little."""
        base = self._base_cache.get(feat)
        return base if base is not None else self._base_uncached(feat)

    def _base_uncached(self, feat: str) -> float:
        if feat == "#":
            return self.NUMBER
        if len(feat) == 1 and is_cjk(feat):
            return self.UNIGRAM * (self.WEAK if feat in self._weak_grams else 1.0)
        if feat in self._weak_grams:
            return self.WEAK
        if len(feat) == 2 and is_cjk(feat[0]):  # a bigram; with weak characters it is often junk
            weak = (feat[0] in self._weak_chars) + (feat[1] in self._weak_chars)
            return (1.0, self.WEAK_PAIR, self.WEAK)[weak]
        return 1.0

    # ── matching ──

    def _clauses(self, text: str) -> list[list[tuple[str, str | None]]]:
        """Features of each clause that has any (a long message usually holds one question)."""
        clauses = (self._features(c) for c in _CLAUSE_SPLIT.split(text) if c.strip())
        return [c for c in clauses if c]

    def _contribution_uncached(self, f: str, pf: str | None) -> _Contribution:
        """A feature's weight in the message and what it adds to each variant (and entry) it matches;
        also the variants it matches grouped by entry, so that scoring a few candidate entries
        visits only their matches, not every variant of a common feature."""
        base = self._base(f)
        exact = self._char_postings.get(f)
        if exact is not None:
            w = base * self._char_idf[f]
        elif pf is not None and pf in self._pinyin_idf:
            w = base * self._pinyin_idf[pf]  # unknown characters that sound like ours: a typo
        else:
            return base * self.UNKNOWN, {}, {}, {}
        matched = dict.fromkeys(exact, w) if exact is not None else {}
        # homophones: bigrams always; single characters only when the character is unknown
        if pf is not None and (exact is None or pf.count("~") == 2):
            w_py = self.PINYIN * base * self._pinyin_idf.get(pf, 0.0)
            for v in self._pinyin_postings.get(pf, ()):
                matched.setdefault(v, w_py)
        entries: dict[int, float] = {}
        grouped: dict[int, list[tuple[int, float]]] = {}
        for v, mw in matched.items():
            e = self._variant_entry[v]
            if mw > entries.get(e, 0.0):
                entries[e] = mw
            grouped.setdefault(e, []).append((v, mw))
        return w, matched, entries, grouped

    def _accumulate(self, feats: Iterable[tuple[str, str | None]], allowed: frozenset[int] | None = None) -> _Acc:
        """Message weight, and matched weight per variant and per entry, of a set of features.

        Sparse: only variants that share a feature appear. `allowed` (entry indexes) restricts the
        work to candidate entries, so a large FAQ costs what its candidates cost.
        """
        mass = 0.0
        by_variant: dict[int, float] = {}
        by_entry: dict[int, float] = {}
        for feat in feats:
            w, matched, entries, grouped = self._contribution(*feat)
            mass += w
            if allowed is None:
                for v, mw in matched.items():
                    by_variant[v] = by_variant.get(v, 0.0) + mw
                for e, mw in entries.items():
                    by_entry[e] = by_entry.get(e, 0.0) + mw
                continue
            # the candidates this feature matches, walking the shorter of the two
            if len(entries) > len(allowed):
                hits = [e for e in allowed if e in entries]
            else:
                hits = [e for e in entries if e in allowed]
            for e in hits:
                by_entry[e] = by_entry.get(e, 0.0) + entries[e]
                for v, mw in grouped[e]:
                    by_variant[v] = by_variant.get(v, 0.0) + mw
        return mass, by_variant, by_entry

    def _score_window(self, acc: _Acc, best: dict[int, float], total: float) -> None:
        """Score one window from its accumulated weights; keep each entry's best score in best.

        score = (1 - COVER) * Dice(window, closest variant) + COVER * (entry's share of the window),
        times (window weight / message weight) ** PART when the window is only part of the message.
        """
        mass, by_variant, by_entry = acc
        part = min(1.0, mass / total) ** self.PART if total > 0 else 1.0
        smoothed, owner = self._variant_mass_smoothed, self._variant_entry
        closest: dict[int, float] = {}  # each entry's best Dice (a variant sharing nothing has 0)
        for v, mv in by_variant.items():
            d = 2.0 * mv / (mass + smoothed[v])
            if d > closest.get(owner[v], 0.0):
                closest[owner[v]] = d
        for e, matched in by_entry.items():
            if matched <= 0.0:
                continue
            dice = closest.get(e, 0.0)
            cover = matched / (mass + self.COVER_SMOOTH)
            s = part * ((1.0 - self.COVER) * dice + self.COVER * cover)
            if s > best.get(e, 0.0):
                best[e] = s

    def scores(self, text: str, only: Iterable[int] | None = None) -> dict[int, float]:
        """Best score per entry index over the windows: each clause, each pair of adjacent clauses
        and the whole message (entries with no overlap at all are absent). `only`: score just these
        entries (the candidates the meaning index found)."""
        allowed = frozenset(only) if only is not None else None
        clauses = self._clauses(text[-self.MAX_CHARS :])
        accs = [self._accumulate(c, allowed) for c in clauses]
        n = len(clauses)
        for i in range(n - 1):  # pairs: add the two clauses, count features they share once
            (ma, va, ea), (mb, vb, eb) = accs[i], accs[i + 1]
            ms, vs, es = self._accumulate(set(clauses[i]).intersection(clauses[i + 1]), allowed)
            accs.append((ma + mb - ms, _merge(va, vb, vs), _merge(ea, eb, es)))
        if n > 2:
            accs.append(self._accumulate(dict.fromkeys(f for c in clauses for f in c), allowed))
        total = accs[-1][0] if n > 1 else 0.0
        best: dict[int, float] = {}
        for index, acc in enumerate(accs):
            # buyers end with their question: the last clause (alone or with the one before) is no "part"
            is_last = index in (n - 1, 2 * n - 2)
            self._score_window(acc, best, 0.0 if is_last else total)
        return best

    def match(self, text: str) -> FaqMatch:
        """The confident answer for text, or a refusal (entry None) with the best score."""
        ranked = sorted(self.scores(text).items(), key=lambda kv: -kv[1])
        if not ranked:
            return FaqMatch(query=text, entry=None, score=0.0)
        top, score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        candidate = self.entries[top]
        confident = score >= self.threshold and score - runner_up >= self.margin
        return FaqMatch(
            query=text,
            entry=candidate if confident else None,
            score=round(min(score, 1.0), 4),
            candidate=candidate,
        )


_Acc = tuple[float, dict[int, float], dict[int, float]]
# a feature's weight, its matched weight per variant and per entry, and its matches grouped by entry
_Contribution = tuple[float, dict[int, float], dict[int, float], dict[int, list[tuple[int, float]]]]


def _merge(a: dict[int, float], b: dict[int, float], shared: dict[int, float]) -> dict[int, float]:
    """a + b - shared, key by key (the weights of two adjacent clauses, shared features once)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    for k, v in shared.items():
        out[k] = out.get(k, 0.0) - v
    return out


def _units(text: str) -> list[str]:
    """Characters for Chinese, words for other letters, '#' for numbers, " " between chunks.

    Chunks are what is left between spaces after synonyms and stop words, so lexicon words
    act as a light word segmentation: no bigram straddles "退款 | 什么时候".
    """
    units: list[str] = []
    for chunk in text.split():
        if units:
            units.append(" ")
        start = 0
        for k, ch in enumerate(chunk):
            if is_cjk(ch):
                units.extend("#" if t.isdigit() else t for t in _TOKEN.findall(chunk[start:k]))
                units.append(ch)
                start = k + 1
        units.extend("#" if t.isdigit() else t for t in _TOKEN.findall(chunk[start:]))
    return units


def _grams(units: Sequence[str]) -> list[tuple[str, str | None]]:
    """Chinese character unigrams and adjacent bigrams with their pinyin ("~fa~huo"); words as is."""
    out: list[tuple[str, str | None]] = []
    prev: tuple[str, str] | None = None
    for u in units:
        if u == " ":
            prev = None
        elif len(u) == 1 and is_cjk(u):
            cur = (u, "~" + _pinyin(u))
            out.append(cur)
            if prev is not None:
                out.append((prev[0] + cur[0], prev[1] + cur[1]))
            prev = cur
        else:
            out.append((u, None))
            prev = None
    return out

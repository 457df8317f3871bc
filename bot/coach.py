"""Reply coaching for the desk: before an agent's reply goes out, flag what the shop's service
standard forbids — a curt one-word reply, a refusal while the buyer bargains, blaming the buyer,
arguing, rudeness — and suggest a phrasebook alternative.

The rules are data ([[coach]] in the phrasebook). Each has `words` (exact, for the unmistakable
cases) and `examples`: replies of that kind in other words. With an embedding (the understanding
module's), a reply is also judged by meaning: it is of a kind when it is close to one of that
kind's examples and clearly closer to them than to any good reply (every quick phrase in the
phrasebook, and `coach_good`), so "没办法，就这个价" is a refusal with no 不 and no keyword in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.intents import Classifier
from bot.phrasebook import BASE_LOCALES, Phrasebook
from bot.textnorm import normalise

# labelled examples -> a nearest-example classifier (Understanding.classifier: the understanding module's)
MakeClassifier = Callable[[Mapping[str, Sequence[str]]], Classifier]
GOOD = "good"


@dataclass(frozen=True)
class CoachWarning:
    rule: str
    message: str
    suggestion: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "suggestion": self.suggestion}


@dataclass(frozen=True)
class _Rule:
    rule: str
    whole: bool
    words: frozenset[str]
    message: str
    suggestion_id: str


@dataclass(frozen=True)
class Thresholds:
    """By meaning, a reply is of a kind when its closest example is at least `floor` (cosine) and
    `lead` closer than the closest good reply. Chosen on the phrasebook's examples and checked on
    held-out replies (tests/data/coach_eval.toml), never on those."""

    floor: float = 0.55
    lead: float = 0.1


class Coach:
    def __init__(self, phrasebook: Phrasebook, classifier: MakeClassifier | None = None, thresholds: Thresholds = Thresholds()):
        self.phrasebook = phrasebook
        self.make_classifier = classifier
        self.thresholds = thresholds
        self._rules: dict[str, list[_Rule]] = {}
        examples: dict[str, list[str]] = {}
        for locale, rules in phrasebook.coach.items():
            self._rules[locale] = [
                _Rule(str(r["rule"]), r.get("match") == "whole", frozenset(_compact(str(w)) for w in r.get("words", ())),  # type: ignore[union-attr]
                      str(r["message"]), str(r["suggestion"]))
                for r in rules
            ]
            for r in rules:
                seen = examples.setdefault(str(r["rule"]), [])
                seen.extend(str(e) for e in r.get("examples", ()) if str(e) not in seen)  # type: ignore[union-attr]
        self.examples = {rule: tuple(texts) for rule, texts in examples.items() if texts}
        self.good = tuple(_good_replies(phrasebook))
        self._bargaining = tuple(_compact(w) for w in phrasebook.keywords.get("bargaining", ()))
        self._model: Classifier | None = None

    def is_bargaining(self, buyer_texts: list[str]) -> bool:
        return any(w and w in _compact(t) for t in buyer_texts for w in self._bargaining)

    def meaning(self, reply: str) -> dict[str, float]:
        """The reply's closeness (cosine) to each kind's examples and to the good replies."""
        if self.make_classifier is None:
            return {}
        if self._model is None:  # built on first use: the examples are embedded once
            groups = {**self.examples, GOOD: self.good}
            self._model = self.make_classifier({k: [normalise(t) or t for t in v] for k, v in groups.items()})
        return self._model.similarities(normalise(reply) or reply)

    def check(self, reply: str, locale: str, bargaining: bool = False, name: str = "", shop: str = "") -> list[CoachWarning]:
        text = _compact(reply)
        rules = [r for r in self._rules.get(self.phrasebook.locale_of(locale), []) if bargaining or r.rule != "blunt_no"]
        fired = [r for r in rules if (text in r.words if r.whole else any(w and w in text for w in r.words))
                 or (r.whole and not text and reply.strip())]
        kind = self._by_meaning(reply) if not fired else None  # meaning covers what no word caught
        fired += [r for r in rules if r.rule == kind]
        return [CoachWarning(r.rule, r.message, self.phrasebook.text(r.suggestion_id, locale, name=name or "亲", shop=shop))
                for r in fired]

    def _by_meaning(self, reply: str) -> str | None:
        """The one kind this reply is by meaning, or None (a refusal while nobody bargains is fine:
        the caller only keeps kinds whose rule applies)."""
        if self.make_classifier is None or not self.examples or not reply.strip():
            return None
        scores = self.meaning(reply)
        kind = max(self.examples, key=lambda n: scores.get(n, -1.0))
        score, good = scores.get(kind, -1.0), scores.get(GOOD, -1.0)
        return kind if score >= self.thresholds.floor and score >= good + self.thresholds.lead else None


def _good_replies(phrasebook: Phrasebook) -> list[str]:
    """Replies the standard wants: every quick phrase (filled in) in every language, and coach_good."""
    out = [phrasebook.text(pid, locale, name="亲", shop="小店")
           for locale in BASE_LOCALES for pid, p in phrasebook.phrases[locale].items() if p.category != "system"]
    return out + list(phrasebook.keywords.get("coach_good", ()))


def _compact(text: str) -> str:
    """Normalised (Simplified, lower case, no punctuation or emoji) and without spaces."""
    return normalise(text).replace(" ", "")

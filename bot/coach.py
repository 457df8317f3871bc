"""Reply coaching for the desk: before an agent's reply goes out, flag what the shop's service
standard forbids — a curt one-word reply, a blunt 不 while the buyer bargains, blaming the buyer,
arguing — and suggest a phrasebook alternative. The rules are data ([[coach]] in the phrasebook).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.phrasebook import Phrasebook
from bot.textnorm import normalise


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


class Coach:
    def __init__(self, phrasebook: Phrasebook):
        self.phrasebook = phrasebook
        self._rules: dict[str, list[_Rule]] = {}
        for locale, rules in phrasebook.coach.items():
            self._rules[locale] = [
                _Rule(str(r["rule"]), r.get("match") == "whole", frozenset(_compact(str(w)) for w in r.get("words", ())),  # type: ignore[union-attr]
                      str(r["message"]), str(r["suggestion"]))
                for r in rules
            ]
        self._bargaining = tuple(_compact(w) for w in phrasebook.keywords.get("bargaining", ()))

    def is_bargaining(self, buyer_texts: list[str]) -> bool:
        return any(w and w in _compact(t) for t in buyer_texts for w in self._bargaining)

    def check(self, reply: str, locale: str, bargaining: bool = False, name: str = "", shop: str = "") -> list[CoachWarning]:
        text = _compact(reply)
        found: list[CoachWarning] = []
        for rule in self._rules.get(self.phrasebook.locale_of(locale), []):
            if rule.rule == "blunt_no" and not bargaining:
                continue
            hit = text in rule.words if rule.whole else any(w and w in text for w in rule.words)
            if hit or (rule.whole and not text and reply.strip()):
                suggestion = self.phrasebook.text(rule.suggestion_id, locale, name=name or "亲", shop=shop)
                found.append(CoachWarning(rule.rule, rule.message, suggestion))
        return found


def _compact(text: str) -> str:
    """Normalised (Simplified, lower case, no punctuation or emoji) and without spaces."""
    return normalise(text).replace(" ", "")

"""The phrasebook: every buyer-facing sentence, by id and locale, loaded from phrasebook/*.toml.

Handlers refer to phrases by id ("system.welcome"); zh-TW is derived from zh-CN with OpenCC, so a
shop writes its phrases once per language, not once per script.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from bot import reasons
from bot.textnorm import to_traditional

# Phrases the bot itself needs; a phrasebook without them is refused at start-up.
REQUIRED = (
    "system.welcome", "system.welcome_named", "system.welcome_off_hours", "system.welcome_off_hours_named",
    "system.back_today", "system.back_tomorrow", "system.back_on", "system.back_date", "system.back_later",
    "system.day_mon", "system.day_tue", "system.day_wed", "system.day_thu", "system.day_fri", "system.day_sat", "system.day_sun",
    "system.greeting_again", "system.rephrase",
    "system.offer_human", "system.unsupported", "system.too_long",
)
PLACEHOLDERS = frozenset({"shop", "name", "open", "close", "back", "agent", "group", "position", "wait", "day", "month", "mday"})
BASE_LOCALES = ("zh-CN", "en")


class PhrasebookError(ValueError):
    """Names the file and the phrase id at fault."""


@dataclass(frozen=True)
class Phrase:
    id: str
    category: str
    text: str


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Phrasebook:
    """Phrases per locale plus category names and keyword lists."""

    phrases: Mapping[str, Mapping[str, Phrase]]  # locale -> id -> phrase
    categories: Mapping[str, Mapping[str, str]]  # locale -> category -> display name
    keywords: Mapping[str, tuple[str, ...]]      # list name -> words (union of all locales)
    default_locale: str = "zh-CN"
    coach: Mapping[str, tuple[Mapping[str, object], ...]] = field(default_factory=dict)  # locale -> [[coach]] rules
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # locale -> "reasons.<key>" / "flags.<flag>" -> desk label

    @classmethod
    def load(cls, folder: str | Path, default_locale: str = "zh-CN") -> Phrasebook:
        folder = Path(folder)
        phrases: dict[str, Mapping[str, Phrase]] = {}
        categories: dict[str, Mapping[str, str]] = {}
        keywords: dict[str, list[str]] = {}
        coach: dict[str, tuple[Mapping[str, object], ...]] = {}
        labels: dict[str, Mapping[str, str]] = {}
        for locale in BASE_LOCALES:
            path = folder / f"{locale}.toml"
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise PhrasebookError(f"{path}: {exc}") from None
            table: dict[str, Phrase] = {}
            for category, entries in data.get("phrases", {}).items():
                for key, text in entries.items():
                    pid = f"{category}.{key}"
                    _check(path, pid, text)
                    table[pid] = Phrase(pid, category, text)
            missing = [pid for pid in REQUIRED if pid not in table]
            if missing:
                raise PhrasebookError(f"{path}: missing phrases {', '.join(missing)}")
            phrases[locale] = MappingProxyType(table)
            categories[locale] = MappingProxyType(dict(data.get("categories", {})))
            coach[locale] = tuple(MappingProxyType(rule) for rule in data.get("coach", []))
            for rule in coach[locale]:
                if str(rule.get("suggestion", "")) not in table:
                    raise PhrasebookError(f"{path}: coach rule {rule.get('rule')!r}: unknown suggestion {rule.get('suggestion')!r}")
            labels[locale] = MappingProxyType(_labels(path, data))
            for name, words in data.get("keywords", {}).items():
                keywords.setdefault(name, []).extend(w for w in words if w not in keywords.get(name, []))
        zh = phrases["zh-CN"]
        phrases["zh-TW"] = MappingProxyType({k: Phrase(p.id, p.category, to_traditional(p.text)) for k, p in zh.items()})
        categories["zh-TW"] = MappingProxyType({k: to_traditional(v) for k, v in categories["zh-CN"].items()})
        labels["zh-TW"] = MappingProxyType({k: to_traditional(v) for k, v in labels["zh-CN"].items()})
        return cls(
            phrases=MappingProxyType(phrases),
            categories=MappingProxyType(categories),
            keywords=MappingProxyType({k: tuple(v) for k, v in keywords.items()}),
            default_locale=default_locale,
            coach=MappingProxyType({**coach, "zh-TW": coach["zh-CN"]}),
            labels=MappingProxyType(labels),
        )

    def label(self, table: str, key: str, locale: str | None = None) -> str:
        """A desk label: `reasons.<key>` (why a chat went to a human), `flags.<flag>` (its badge) or
        `followups.<kind>` (a supervisor's follow-up)."""
        return self.labels[self.locale_of(locale)].get(f"{table}.{key}", key)

    def locale_of(self, locale: str | None) -> str:
        return locale if locale in self.phrases else self.default_locale

    def text(self, phrase_id: str, locale: str | None = None, **values: str) -> str:
        """The phrase in the buyer's locale with placeholders filled (unknown values render empty)."""
        table = self.phrases[self.locale_of(locale)]
        phrase = table.get(phrase_id) or self.phrases[self.default_locale][phrase_id]
        return phrase.text.format_map(_Blank({k: v for k, v in values.items() if v is not None}))


def _labels(path: Path, data: dict[str, object]) -> dict[str, str]:
    """The desk's labels for every handoff reason and flag (bot/reasons.py); all are required, so the
    desk never has to show a raw key."""
    out: dict[str, str] = {}
    for table, keys in (("reasons", reasons.KEYS), ("flags", reasons.FLAGS), ("followups", reasons.FOLLOWUPS)):
        given = data.get(table, {})
        for key in keys:
            text = given.get(key) if isinstance(given, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise PhrasebookError(f"{path}: [{table}] {key}: a label is required")
            out[f"{table}.{key}"] = text
    return out


def _check(path: Path, pid: str, text: object) -> None:
    if not isinstance(text, str) or not text.strip():
        raise PhrasebookError(f"{path}: {pid}: must be a non-empty string")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise PhrasebookError(f"{path}: {pid}: {exc}") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise PhrasebookError(f"{path}: {pid}: unknown placeholder {{{sorted(unknown)[0]}}}")

"""`check-config`: every problem of a config and the files it names, in one run.

Errors make the check fail (exit 2). Warnings are printed and, unless --strict, do not fail it: the
demo password is a warning so the shipped demo config still starts with `make run`, while a
production check (`check-config --strict`) refuses it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.config import PROJECT_ROOT, Config, ConfigError, load_config

DEMO_PASSWORD = "xiaoer-demo"  # published in the README and config.example.toml
DEMO_FAQ = PROJECT_ROOT / "phrasebook" / "faq" / "demo-shop.toml"  # also the default of faq.files
_HASHER = PasswordHasher()


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check(path: str | Path) -> Report:
    """All problems of the config at `path`: validation, agents' passwords, FAQ files, phrasebook."""
    report = Report()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        report.errors.append(f"{p}: cannot read ({exc.strerror})")
        return report
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        report.errors.append(f"{p}: not valid TOML ({exc})")
        return report
    config: Config | None = None
    try:
        config = load_config(p)
    except ConfigError as exc:
        report.errors.extend(exc.problems)
    password_problems(raw, report)
    # The files are checked even when the config itself has problems, so one run shows everything.
    base = p.resolve().parent
    faq_files = config.faq_paths if config else _raw_faq_paths(raw, base)
    report.errors.extend(faq_problems(faq_files))
    report.warnings.extend(demo_faq_warnings(faq_files))
    report.errors.extend(phrasebook_problems(config.phrasebook_path if config else _raw_phrasebook(raw, base)))
    return report


def password_problems(raw: dict[str, Any], report: Report) -> None:
    agents = raw.get("agents")
    if not isinstance(agents, list):
        return
    for i, agent in enumerate(agents):
        value = agent.get("password_hash") if isinstance(agent, dict) else None
        if not isinstance(value, str) or not value or "${" in value:
            continue  # missing or wrong type is reported by the validation; ${VAR} unset likewise
        key = f"agents[{i}].password_hash"
        if not value.startswith("$"):
            report.errors.append(f"{key}: looks like a plain password, not a hash; store the output of "
                                 "`python -m bot hash-password` instead")
            continue
        try:
            _HASHER.verify(value, DEMO_PASSWORD)
        except VerifyMismatchError:
            continue
        except (InvalidHashError, VerificationError):
            report.errors.append(f"{key}: not a valid argon2 hash (make one with `python -m bot hash-password`)")
            continue
        report.warnings.append(f"{key}: still the published demo password {DEMO_PASSWORD!r}; set a new one before going live")


def demo_faq_warnings(paths: list[Path]) -> list[str]:
    """The demo shop's FAQ (the default when [faq] is left out) would answer buyers with another
    shop's prices and policies: fine for `make run`, refused by a production check."""
    demo = DEMO_FAQ.resolve()
    return [f"faq.files[{i}]: the demo shop's FAQ ({DEMO_FAQ.name}); list your shop's own FAQ files before going live"
            for i, path in enumerate(paths) if Path(path).resolve() == demo]


def faq_problems(paths: list[Path]) -> list[str]:
    """Every bad entry of every FAQ file (not only the first), and ids used twice across files."""
    from bot.faq import FaqFileError, _entry_from_table, load_faq_files

    problems: list[str] = []
    seen: dict[str, str] = {}
    for i, path in enumerate(paths):
        name, key = str(path), f"faq.files[{i}]"
        try:
            load_faq_files([path])
        except FaqFileError as exc:
            if "faq[" not in str(exc):  # the file as a whole: missing, not TOML, no entries ...
                problems.append(f"{key}: {exc}")
                continue
        tables = tomllib.loads(Path(path).read_text("utf-8")).get("faq", [])
        for index, table in enumerate(tables):
            try:
                entry = _entry_from_table(name, index, table)
            except FaqFileError as exc:
                problems.append(f"{key}: {exc}")
                continue
            if entry.id in seen:
                origin = "" if seen[entry.id] == name else f" (first defined in {seen[entry.id]})"
                problems.append(f'{key}: {name}: faq[{index}].id: duplicate id "{entry.id}"{origin}')
            else:
                seen[entry.id] = name
    return problems


def phrasebook_problems(path: Path) -> list[str]:
    from bot.phrasebook import Phrasebook, PhrasebookError

    try:
        Phrasebook.load(path)
    except PhrasebookError as exc:
        return [f"shop.phrasebook_dir: {exc}"]
    return []


def _raw_faq_paths(raw: dict[str, Any], base: Path) -> list[Path]:
    faq = raw.get("faq") if isinstance(raw.get("faq"), dict) else {}
    files = faq.get("files", [str(DEMO_FAQ)])
    if not isinstance(files, list):
        return []
    return [Path(f) if Path(f).is_absolute() else base / f for f in files if isinstance(f, str) and "${" not in f]


def _raw_phrasebook(raw: dict[str, Any], base: Path) -> Path:
    shop = raw.get("shop") if isinstance(raw.get("shop"), dict) else {}
    value = shop.get("phrasebook_dir") if isinstance(shop.get("phrasebook_dir"), str) else ""
    return (Path(value) if Path(value).is_absolute() else base / value) if value else PROJECT_ROOT / "phrasebook"

"""FAQ matcher accuracy and speed on a held-out evaluation set.

    python bench/faq_accuracy.py [--faq FILE ...] [--eval FILE] [--threshold T] [--margin M]

Defaults: phrasebook/faq/demo-shop.toml and tests/data/faq_eval.toml. Prints accuracy, the
wrong-answer rate and the refusal rate on in-scope cases, the false-answer rate on out-of-scope
cases (expect = ""), a per-kind breakdown, matching speed, and every failure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bot.faq import FaqMatcher, load_faq_files  # noqa: E402

DEFAULT_FAQ = REPO_ROOT / "phrasebook" / "faq" / "demo-shop.toml"
DEFAULT_EVAL = REPO_ROOT / "tests" / "data" / "faq_eval.toml"


def load_cases(path: str | Path) -> list[dict[str, str]]:
    """[[case]] tables with text, expect ("" = out of scope) and kind."""
    with open(path, "rb") as fh:
        cases = tomllib.load(fh).get("case", [])
    return [{"text": c["text"], "expect": c.get("expect", ""), "kind": c.get("kind", "-")} for c in cases]


def evaluate(matcher: FaqMatcher, cases: list[dict[str, str]]) -> dict[str, Any]:
    """Run every case once; return the counts, per-kind figures, timings and failures."""
    for case in cases[:20]:  # warm caches (pinyin, regexes) so timings show the steady state
        matcher.match(case["text"])
    timings: list[float] = []
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # kind -> [ok, total]
    failures: list[tuple[str, str, str, float, str]] = []
    counts = {"in": 0, "correct": 0, "wrong": 0, "refused": 0, "out": 0, "false": 0}
    for case in cases:
        t0 = time.perf_counter_ns()
        result = matcher.match(case["text"])
        timings.append((time.perf_counter_ns() - t0) / 1000)
        got, expect = result.id or "", case["expect"]
        if expect:
            counts["in"] += 1
            if got == expect:
                counts["correct"] += 1
            elif got:
                counts["wrong"] += 1
            else:
                counts["refused"] += 1
        else:
            counts["out"] += 1
            if got:
                counts["false"] += 1
        ok = got == expect
        kinds[case["kind"]][0] += ok
        kinds[case["kind"]][1] += 1
        if not ok:
            best = result.candidate.id if result.candidate else "-"
            failures.append((case["kind"], case["text"], expect or "(refuse)", result.score, got or f"(refused; best {best})"))
    timings.sort()
    return {
        "counts": counts,
        "kinds": dict(kinds),
        "mean_us": statistics.fmean(timings) if timings else 0.0,
        "p99_us": timings[min(len(timings) - 1, int(len(timings) * 0.99))] if timings else 0.0,
        "failures": failures,
    }


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "   n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faq", action="append", help="FAQ file (repeatable); default: the demo FAQ")
    parser.add_argument("--eval", default=str(DEFAULT_EVAL), help="evaluation set (TOML [[case]] tables)")
    parser.add_argument("--threshold", type=float, help="override the matcher's threshold")
    parser.add_argument("--margin", type=float, help="override the matcher's margin")
    args = parser.parse_args(argv)

    entries = load_faq_files(args.faq or [DEFAULT_FAQ])
    cases = load_cases(args.eval)
    options = {k: v for k, v in (("threshold", args.threshold), ("margin", args.margin)) if v is not None}
    t0 = time.perf_counter()
    matcher = FaqMatcher(entries, **options)
    build_ms = (time.perf_counter() - t0) * 1000
    report = evaluate(matcher, cases)
    c = report["counts"]

    variants = sum(len(e.questions) for e in entries)
    print(f"FAQ: {len(entries)} entries, {variants} question variants; eval: {c['in']} in-scope + {c['out']} out-of-scope cases")
    print(f"threshold {matcher.threshold}, margin {matcher.margin}; matcher built in {build_ms:.0f} ms")
    print()
    print(f"in-scope  accuracy (correct id)   {_pct(c['correct'], c['in'])}  ({c['correct']}/{c['in']})")
    print(f"in-scope  wrong answers           {_pct(c['wrong'], c['in'])}  ({c['wrong']}/{c['in']})")
    print(f"in-scope  refused                 {_pct(c['refused'], c['in'])}  ({c['refused']}/{c['in']})")
    print(f"out-of-scope false answers        {_pct(c['false'], c['out'])}  ({c['false']}/{c['out']})")
    print(f"speed     mean {report['mean_us']:.0f} µs, p99 {report['p99_us']:.0f} µs per query")
    print()
    print("per kind (correct = right id, or refused when out of scope):")
    for kind, (ok, total) in sorted(report["kinds"].items(), key=lambda kv: (-kv[1][1], kv[0])):
        print(f"  {kind:<12} {_pct(ok, total)}  ({ok}/{total})")
    failures = report["failures"]
    print()
    print(f"failures ({len(failures)}):")
    for kind, text, expect, score, got in failures:
        print(f"  [{kind}] {text!r}: expected {expect}, got {got} (score {score:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Understanding: accuracy on held-out shops, and speed as the FAQ grows.

    python bench/faq_accuracy.py [--shop DIR ...] [--sizes 40,1000,10000] [--no-speed]

Accuracy is reported ONLY on held-out data: the demo shop's held-out messages
(tests/data/faq_heldout_demo.jsonl), six shops written for the purpose and first scored as the gate of
the last change to understanding (tests/data/apparel-shop/, eyewear-shop/, flower-shop/, luggage-shop/,
supplement-shop/, toy-shop/), four written after it (tea-shop/, lighting-shop/, shoe-shop/,
kitchen-shop/), and every --shop DIR given (a folder with kb.toml and queries.jsonl, e.g.
another shop's FAQ that this project was never tuned on). The tuning and training sets (the demo
shop's tuning part and the snack, baby, home, pet, beauty, outdoor, fruit, books, jewelry and car
shops: bench/faq_tune.py, bench/train_adapter.py) are not printed here.

Speed: a knowledge base of N entries (the demo FAQ's entries repeated with other product names,
so questions differ), load time (embedding every question and answer, without the disk cache),
per-message p50 / p99 on 2,000 messages, and the process's peak RSS. The machine may be shared, so
the same run first times the bare baseline — the model embedding the same messages, nothing else —
and prints each figure also as a ratio to it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bot.encoder import MODEL_NAME, Encoder  # noqa: E402
from bot.evaluation import Score, load_cases, score  # noqa: E402
from bot.faq import FaqEntry, load_faq_files  # noqa: E402
from bot.understanding import Understanding  # noqa: E402

DEMO_FAQ = REPO_ROOT / "phrasebook" / "faq" / "demo-shop.toml"
DEMO_HELD_OUT = REPO_ROOT / "tests" / "data" / "faq_heldout_demo.jsonl"
HELD_OUT_SHOPS = [REPO_ROOT / "tests" / "data" / f"{name}-shop" for name in
                  ("apparel", "eyewear", "flower", "luggage", "supplement", "toy", "tea", "lighting", "shoe", "kitchen")]
KIND_ORDER = ("plain", "paraphrase", "colloquial", "typo", "traditional", "english", "mixed", "long", "short",
              "out_of_scope", "escalate")
GOODS = [a + b for a in "蓝牙 无线 智能 便携 迷你 家用 车载 儿童 户外 办公".split()
         for b in "耳机 音箱 手表 充电宝 台灯 风扇 水杯 背包 键盘 鼠标 水壶 相机 支架 插座 灯泡 拖鞋 雨伞 毛巾 枕头 茶叶".split()]
QUERIES = ["什么时候发货", "可以退货吗 没拆封", "这个会过敏吗 我是敏感肌", "do you ship abroad?", "老板 能便宜点不",
           "我上周买的到现在还没到 物流也不更新 怎么回事 到底什么时候能到", "發票怎麼開", "能用花呗吗"]


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def report(name: str, result: Score) -> None:
    print(f"\n{name}: {result.total} messages ({result.in_scope} in scope, {result.must_refuse} out of scope or escalation)")
    print(f"  resolved (answered right, or right entry among the suggestions): {pct(result.resolved_share)}")
    print(f"  answered right at once:                                          {pct(result.right_share)}")
    print(f"  confident wrong answers (of all messages):                       {pct(result.wrong_share)}")
    print(f"  out-of-scope and escalation messages not answered:               {pct(result.refused_share)}")
    if result.escalations:
        reasons = f", {result.right_reason}/{result.reasoned} with the labelled reason" if result.reasoned else ""
        print(f"  requests and disputes handed to a person at once:                {pct(result.handed_over_share)}"
              f" ({result.handed_over}/{result.escalations}{reasons})")
    if result.out_of_scope:
        print(f"  out-of-scope messages offered \"did you mean\" (no answer):      {pct(result.offered_share)}"
              f" ({result.offered}/{result.out_of_scope})")
    kinds = [k for k in KIND_ORDER if k in result.by_kind] + sorted(set(result.by_kind) - set(KIND_ORDER))
    print("  correct decision by kind: " + ", ".join(
        f"{k} {result.by_kind[k][0]}/{result.by_kind[k][1]}" for k in kinds))


def synthetic(n: int) -> list[FaqEntry]:
    base = load_faq_files([DEMO_FAQ])
    if n <= len(base):
        return list(base[:n])
    out = []
    for i in range(n):
        e, goods = base[i % len(base)], GOODS[(i // len(base)) % len(GOODS)]
        out.append(FaqEntry(id=f"{e.id}-{i}", answer=f"{goods}：{e.answer}",
                            questions=tuple(f"{q} ({goods})" if q.isascii() else f"{goods}{q}" for q in e.questions)))
    return out


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def baseline() -> tuple[float, float]:
    """p50 / p99 of embedding one message alone (the model's own cost, no FAQ at all)."""
    encoder = Encoder()
    for q in QUERIES:
        encoder.encode([q + "。"])
    times = []
    for k in range(2000):
        text = f"{QUERIES[k % len(QUERIES)]} {k}"
        t = time.perf_counter()
        encoder.encode([text])
        times.append(time.perf_counter() - t)
    return percentiles(times)


def speed(n: int, base: tuple[float, float]) -> None:
    entries = synthetic(n)
    started = time.perf_counter()
    understanding = Understanding(entries)
    load = time.perf_counter() - started
    for q in QUERIES:
        understanding.read(q + "。")
    times = []
    for k in range(2000):
        text = f"{QUERIES[k % len(QUERIES)]} {k}"  # never a cache hit
        t = time.perf_counter()
        understanding.read(text)
        times.append(time.perf_counter() - t)
    p50, p99 = percentiles(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {n:>6} entries: load {load:6.1f} s | per message p50 {1000 * p50:5.2f} ms ({p50 / base[0]:.1f}x), "
          f"p99 {1000 * p99:5.2f} ms ({p99 / base[1]:.1f}x) | peak RSS {rss:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shop", action="append", default=[], help="a held-out shop folder (kb.toml + queries.jsonl)")
    ap.add_argument("--sizes", default="40,1000,10000")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    print(f"model: {MODEL_NAME}")
    report("demo shop, held-out part", score(Understanding(load_faq_files([DEMO_FAQ])), load_cases(DEMO_HELD_OUT)))
    for path in HELD_OUT_SHOPS + [Path(folder) for folder in args.shop]:
        report(f"shop {path.name}", score(Understanding(load_faq_files([path / "kb.toml"])), load_cases(path / "queries.jsonl")))
    if not args.no_speed:
        print("\nspeed (one process, one thread):")
        base = baseline()
        print(f"  baseline, the model embedding one message: p50 {1000 * base[0]:.2f} ms, p99 {1000 * base[1]:.2f} ms")
        for n in (int(s) for s in args.sizes.split(",")):
            speed(n, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())

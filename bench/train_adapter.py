"""Train the embedding adapter of bot/adapter.py (bot/data/meaning-adapter.npz) on labelled shops.

    pip install torch==2.13.0          # a development tool: the bot itself never needs torch
    python bench/train_adapter.py --check            # leave each training shop out, print what it decides
    python bench/train_adapter.py --out bot/data/meaning-adapter.npz

What is learned: a low-rank map x -> unit(x + x·A·Bᵀ), applied to the message and to every FAQ
question and answer, and used in the same blend the decision uses (bot/decision.py: meaning from
the closest question and the answer, mixed with the lexical score). Two jobs, one loss: an in-scope
buyer message should rank its own entry first, and an out-of-scope message should rank no entry
above a learned floor — cross-entropy over a shop's entries plus one "none of them" score, of
blend / TEMPERATURE, plus an L2 penalty on A and B that keeps the map close to the identity. Full
batch, Adam.

Trained only on the shops listed in TRAINING (tests/data/README.md says which sets those are); the
held-out and reserved shops, and any shop outside this repository, are never read here. --check
trains once per training shop with that shop left out and prints, on it, what the decision would do
with the suggestion floor on the plain blend and on the adapted one at several floors: how many
in-scope messages are resolved and how many out-of-scope ones offered "did you mean". Those figures,
on shops the map never saw, are what Thresholds.suggest is chosen from.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bot.adapter import Adapter  # noqa: E402
from bot.decision import Thresholds, decide  # noqa: E402
from bot.encoder import DIM  # noqa: E402
from bot.evaluation import load_cases  # noqa: E402
from bot.faq import load_faq_files  # noqa: E402
from bot.textnorm import normalise  # noqa: E402
from bot.understanding import Understanding  # noqa: E402

DATA = REPO_ROOT / "tests" / "data"
DEMO_FAQ = REPO_ROOT / "phrasebook" / "faq" / "demo-shop.toml"
TRAINING = {
    "demo (tuning part)": (DEMO_FAQ, DATA / "faq_tuning_demo.toml"),
    **{f"{name} shop": (DATA / f"{name}-shop" / "kb.toml", DATA / f"{name}-shop" / "queries.jsonl")
       for name in ("snack", "baby", "home", "pet", "beauty", "outdoor", "fruit", "books", "jewelry", "car")},
}
RANK, PENALTY, TEMPERATURE, STEPS, LEARNING_RATE, SEED = 64, 0.01, 0.05, 300, 0.01, 0
FLOORS = (0.15, 0.175, 0.2, 0.225, 0.25)
PLAIN_FLOOR = 0.2  # the floor of the release before, on the plain blend: the rule the floors are compared with


@dataclass(frozen=True)
class Messages:
    vectors: np.ndarray     # (m, DIM) the whole message, as the bot embeds it
    lexical: np.ndarray     # (m, n) the lexical part of the blend, as the bot computes it
    target: np.ndarray      # (m,) the right entry, or n (none of them) for an out-of-scope message
    reaches: np.ndarray     # (m,) bool: the plain decision neither answers nor finds an intent
    answered: np.ndarray    # (m,) bool: the plain decision answers right (in scope) / at all
    plain_best: np.ndarray  # (m,) the best plain blend (the floor's input without the adapter)


@dataclass(frozen=True)
class ShopData:
    """One shop's plain vectors and its labelled messages (escalations left out: intents judge those)."""

    questions: np.ndarray   # (q, DIM) every entry's questions, entry by entry
    owner: np.ndarray       # (q,) the entry of each question
    answers: np.ndarray     # (n, DIM)
    in_scope: Messages
    out_of_scope: Messages


def prepare(kb: Path, queries: Path) -> ShopData:
    zero = np.zeros((DIM, RANK), dtype=np.float32)
    u = Understanding(load_faq_files([kb]), adapter=Adapter(zero, zero))
    index = {e.id: i for i, e in enumerate(u.entries)}
    t, open_floor = u.thresholds, dataclasses.replace(u.thresholds, suggest=-1.0)
    groups: dict[bool, list] = {True: [], False: []}
    for case in load_cases(queries):
        if case.expect is None and not case.kind.startswith(("out_of_scope", "oos", "noise")):
            continue
        s = u.signals(case.text)
        verdict = decide(s, open_floor, u.handoffs)
        answered = verdict.answer is not None and (case.expect is None or verdict.answer == index[case.expect])
        groups[case.expect is not None].append((
            normalise(case.text), (1.0 - t.answer_words) * s.lexical + t.answer_words * s.lexical_answer,
            index[case.expect] if case.expect else len(u.entries), verdict.decision == "suggest", answered,
            verdict.score))

    def messages(rows: list) -> Messages:
        texts, lexical, target, reaches, answered, best = zip(*rows)
        return Messages(u.encoder.encode(list(texts)).copy(), np.array(lexical, dtype=np.float32), np.array(target),
                        np.array(reaches), np.array(answered), np.array(best, dtype=np.float32))

    return ShopData(
        questions=u.encoder.encode_cached([q for e in u.entries for q in e.questions]).copy(),
        owner=np.repeat(np.arange(len(u.entries)), [len(e.questions) for e in u.entries]),
        answers=u.encoder.encode_cached([e.answer for e in u.entries]).copy(),
        in_scope=messages(groups[True]), out_of_scope=messages(groups[False]),
    )


def blend(shop: ShopData, m: Messages, a, b, t: Thresholds = Thresholds()):
    """The adapted blend of bot/decision.py, which ranks and floors the offers (torch tensors in and out)."""
    import torch

    def adapt(x):
        return torch.nn.functional.normalize(x + (x @ a) @ b.T, dim=1)

    x = adapt(torch.from_numpy(m.vectors))
    q_sims = x @ adapt(torch.from_numpy(shop.questions)).T
    owner = torch.from_numpy(shop.owner).expand(len(m.vectors), -1)
    best_q = torch.full((len(m.vectors), len(shop.answers)), -1.0).scatter_reduce(
        1, owner, q_sims, reduce="amax", include_self=True)
    meaning = (1.0 - t.answer_weight) * best_q + t.answer_weight * (x @ adapt(torch.from_numpy(shop.answers)).T)
    return t.blend * meaning.clamp(0.0, 1.0) + (1.0 - t.blend) * torch.from_numpy(m.lexical)


def train(shops: list[ShopData]) -> tuple[np.ndarray, np.ndarray, float]:
    import torch

    torch.manual_seed(SEED)
    a = (0.01 * torch.randn(DIM, RANK)).requires_grad_()
    b = torch.zeros(DIM, RANK, requires_grad=True)
    floor = torch.tensor(0.2, requires_grad=True)  # the score of "none of them"
    optimiser = torch.optim.Adam([a, b, floor], lr=LEARNING_RATE)
    for _ in range(STEPS):
        optimiser.zero_grad()
        loss = torch.tensor(0.0)
        for s in shops:
            for m in (s.in_scope, s.out_of_scope):
                ranked = blend(s, m, a, b)
                logits = torch.cat([ranked, floor.expand(len(ranked), 1)], dim=1) / TEMPERATURE
                loss = loss + torch.nn.functional.cross_entropy(logits, torch.from_numpy(m.target), reduction="sum")
        count = sum(len(s.in_scope.target) + len(s.out_of_scope.target) for s in shops)
        loss = loss / count + PENALTY * (a.pow(2).sum() + b.pow(2).sum())
        loss.backward()
        optimiser.step()
    return a.detach().numpy(), b.detach().numpy(), float(floor.detach())


def outcomes(shop: ShopData, a: np.ndarray, b: np.ndarray, floor: float | None) -> tuple[int, int]:
    """(in-scope resolved, out-of-scope offered) with the suggestion floor on the adapted blend, or
    on the plain one (floor None: the rule without the adapter's say, PLAIN_FLOOR)."""
    import torch

    result = []
    for m in (shop.in_scope, shop.out_of_scope):
        with torch.no_grad():
            ranked = blend(shop, m, torch.from_numpy(a), torch.from_numpy(b)).numpy()
        best = ranked.max(axis=1) if floor is not None else m.plain_best
        offered = m.reaches & (best >= (floor if floor is not None else PLAIN_FLOOR))
        top = np.argsort(-ranked, axis=1, kind="stable")[:, :3]
        hit = np.array([t in row for t, row in zip(m.target, top)])
        result.append(int((m.answered | (offered & hit)).sum()) if m is shop.in_scope else int(offered.sum()))
    return result[0], result[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="leave each shop out once and print its decisions")
    ap.add_argument("--out", type=Path, help="where to write the weights (.npz with a and b)")
    args = ap.parse_args()
    shops = {name: prepare(*paths) for name, paths in TRAINING.items()}
    if args.check:
        print("each shop left out: in-scope resolved / out-of-scope offered, floor on the plain blend "
              "| on the adapted blend at " + ", ".join(map(str, FLOORS)))
        totals = np.zeros((1 + len(FLOORS), 2), dtype=int)
        for name, shop in shops.items():
            a, b, _ = train([s for n, s in shops.items() if n != name])
            row = np.array([outcomes(shop, a, b, None)] + [outcomes(shop, a, b, f) for f in FLOORS])
            totals += row
            size = f"{len(shop.in_scope.target)}/{len(shop.out_of_scope.target)}"
            print(f"{name:>20} ({size}): " + " | ".join(f"{r}/{o}" for r, o in row))
        print(f"{'all':>20}: " + " | ".join(f"{r}/{o}" for r, o in totals))
    if args.out:
        a, b, floor = train(list(shops.values()))
        np.savez(args.out, a=a.astype(np.float32), b=b.astype(np.float32))
        print(f"wrote {args.out} (rank {RANK}, learned floor {floor:.3f}, trained on {', '.join(shops)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A learned correction of the sentence embeddings, used to rank the "did you mean" suggestions.

USE multilingual puts a buyer's words and a shop's FAQ wording further apart than they mean (上路
for 发货, 寄回去 for 退货). A low-rank linear map, x -> unit(x + x·A·Bᵀ) applied to both sides,
was trained (with torch, offline; the training script is not in the repository yet) on labelled
buyer messages of five shops (the demo shop's tuning part, the snack shop and the baby, home and pet
shops) to put each message closest to its
entry; checked by leaving each shop out, it ranked the right entry in the top three 2–6 points
more often on the shop it never saw. It only re-ranks suggestions: what is answered, refused or
offered at all is decided on the plain embeddings, with the calibrated thresholds.

The weights (512 x 64, twice, about 240 KB) ship in the repository, bot/data/meaning-adapter.npz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_ADAPTER_PATH = Path(__file__).resolve().parent / "data" / "meaning-adapter.npz"


class Adapter:
    """x -> unit(x + (x @ a) @ b.T), row by row; a zero row stays zero."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError(f"adapter factors must have one shape, got {a.shape} and {b.shape}")
        self.a, self.b = a.astype(np.float32), b.astype(np.float32)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_ADAPTER_PATH) -> Adapter:
        with np.load(path) as z:
            return cls(z["a"], z["b"])

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        moved = vectors + (vectors @ self.a) @ self.b.T
        norms = np.linalg.norm(moved, axis=1, keepdims=True)
        return (moved / np.where(norms > 0, norms, 1.0)).astype(np.float32)

"""A learned correction of the sentence embeddings, for the unsure messages: offer or refuse, and what.

USE multilingual puts a buyer's words and a shop's FAQ wording further apart than they mean (上路
for 发货, 寄回去 for 退货). A low-rank linear map, x -> unit(x + x·A·Bᵀ) applied to both sides, is
trained by bench/train_adapter.py (with torch, offline) on the labelled buyer messages of the
tuning and training shops (tests/data/README.md) to put each in-scope message closest to its entry
and each out-of-scope message under a floor. It only acts where the plain decision is unsure: whether
anything is offered as "did you mean", and which three entries. What is answered, and which intent
a message has, is decided on the plain embeddings with the calibrated thresholds.

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

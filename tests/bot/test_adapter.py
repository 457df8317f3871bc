"""The embedding adapter (bot/adapter.py): shipped weights that load, and a map that keeps vectors unit."""

from __future__ import annotations

import numpy as np
import pytest

from bot.adapter import Adapter
from bot.encoder import DIM


def test_the_shipped_weights_load_and_move_vectors_a_little() -> None:
    adapter = Adapter.load()
    assert adapter.a.shape == adapter.b.shape and adapter.a.shape[0] == DIM
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    moved = adapter.apply(np.vstack([x, np.zeros((1, DIM), dtype=np.float32)]))
    assert np.allclose(np.linalg.norm(moved[:5], axis=1), 1.0, atol=1e-5)
    assert not moved[5].any()  # a zero row (an empty text) stays zero
    assert (np.sum(moved[:5] * x, axis=1) > 0.5).all()  # a correction, not another space


def test_factors_of_different_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one shape"):
        Adapter(np.zeros((DIM, 8)), np.zeros((DIM, 4)))

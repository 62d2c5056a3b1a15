"""Instruction embeddings for the critic: a deterministic hashed bag of words, pluggable by name.

Why hashing and not a sentence encoder: the critic must train and run with no pretrained model
and give the same vector on every machine and Python process (``hash()`` is salted per process,
so tokens are hashed with blake2b). A bag of words separates the instructions a multi-task store
holds, which is all a value function conditioned on the task needs. Another embedder (e.g. a
sentence encoder) plugs in by registering a factory under a new name in :data:`EMBEDDERS`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+")


class TextEmbedder(Protocol):
    """Maps ``N`` strings to float32 ``[N, dim]``; must be deterministic across processes."""

    dim: int

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


class HashedBagOfWords:
    """Signed feature hashing of lower-cased words into ``dim`` buckets, L2-normalised."""

    def __init__(self, dim: int = 32) -> None:
        if dim < 1:
            raise ValueError(f"the embedding dim must be >= 1, got {dim}")
        self.dim = dim
        self._cache: dict[str, np.ndarray] = {}

    def _one(self, text: str) -> np.ndarray:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        vec = np.zeros(self.dim, np.float32)
        for word in TOKEN.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm > 0:
            vec /= norm
        self._cache[text] = vec
        return vec

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._one(str(t)) for t in texts])


EMBEDDERS: dict[str, Callable[[int], TextEmbedder]] = {"hashed_bow": HashedBagOfWords}


def make_embedder(name: str, dim: int) -> TextEmbedder:
    """The embedder registered as ``name``; unknown names fail with the valid ones."""
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown language embedder {name!r}; valid: {', '.join(sorted(EMBEDDERS))}"
        ) from None
    return factory(dim)

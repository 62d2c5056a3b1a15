"""OpenVLA's action discretisation: token id -> bin centre in [-1, 1] -> robot units.

Why a module of its own: the mapping is the whole contract between a published action-token
checkpoint and the robot, and an off-by-one here sends every joint to the wrong place. It follows
OpenVLA's ``ActionTokenizer`` and ``predict_action`` exactly:

- ``n_bins`` (256) uniform bin edges on [-1, 1] give ``n_bins - 1`` bin centres;
- the last ``n_bins`` ids of the text vocabulary (below ``vocab_end``) are action tokens, counted
  from the end: ``d = vocab_end - token``, centre index ``clip(d - 1, 0, n_bins - 2)``;
- un-normalisation maps [-1, 1] to [q01, q99] per dimension where ``mask`` is true
  (``0.5 (x + 1) (q99 - q01) + q01``) and passes the value through where it is false (OpenVLA
  leaves the gripper un-normalised this way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BINS = 256


def bin_centers(n_bins: int = N_BINS) -> np.ndarray:
    """The ``n_bins - 1`` centres between ``n_bins`` uniform edges on [-1, 1] (float64)."""
    edges = np.linspace(-1.0, 1.0, n_bins)
    return (edges[:-1] + edges[1:]) / 2.0


def tokens_to_normalized(tokens: np.ndarray, vocab_end: int, n_bins: int = N_BINS) -> np.ndarray:
    """Action token ids (any shape) -> bin centres in [-1, 1] (float64), as OpenVLA decodes."""
    centers = bin_centers(n_bins)
    index = np.clip(vocab_end - np.asarray(tokens, dtype=np.int64) - 1, 0, centers.shape[0] - 1)
    return centers[index]


def normalized_to_tokens(actions: np.ndarray, vocab_end: int, n_bins: int = N_BINS) -> np.ndarray:
    """Normalised actions -> token ids (OpenVLA's encoding; for training data and tests)."""
    edges = np.linspace(-1.0, 1.0, n_bins)
    digitized = np.digitize(np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0), edges)
    return (vocab_end - digitized).astype(np.int64)


def action_token_range(vocab_end: int, n_bins: int = N_BINS) -> tuple[int, int]:
    """``[first, end)`` ids of the action tokens: the last ``n_bins`` below ``vocab_end``."""
    return vocab_end - n_bins, vocab_end


@dataclass(frozen=True)
class ActionNormStats:
    """Per-dimension bounds of OpenVLA's ``norm_stats[key]["action"]`` (q01, q99, mask)."""

    q01: tuple[float, ...]
    q99: tuple[float, ...]
    mask: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not len(self.q01) == len(self.q99) == len(self.mask):
            raise ValueError(
                f"action norm stats disagree on the action dim: q01 has {len(self.q01)}, q99 "
                f"{len(self.q99)}, mask {len(self.mask)} entries"
            )
        if not all(np.isfinite(self.q01)) or not all(np.isfinite(self.q99)):
            raise ValueError("action norm stats q01/q99 must be finite")

    @property
    def dim(self) -> int:
        return len(self.q01)

    @staticmethod
    def from_json(obj: Mapping[str, Any]) -> ActionNormStats:
        """Read ``{"q01": [...], "q99": [...], "mask": [...]}``; no mask means all normalised."""
        try:
            q01 = tuple(float(v) for v in obj["q01"])
            q99 = tuple(float(v) for v in obj["q99"])
        except KeyError as exc:
            raise ValueError(f"action norm stats lack {exc.args[0]!r}") from None
        mask = tuple(bool(v) for v in obj.get("mask", [True] * len(q01)))
        return ActionNormStats(q01, q99, mask)

    def to_json(self) -> dict[str, list[Any]]:
        return {"q01": list(self.q01), "q99": list(self.q99), "mask": list(self.mask)}

    @staticmethod
    def identity(dim: int, mask: Sequence[bool] | None = None) -> ActionNormStats:
        """Bounds [-1, 1]: un-normalisation is the identity (a placeholder for tiny models)."""
        return ActionNormStats((-1.0,) * dim, (1.0,) * dim, tuple(mask or (True,) * dim))

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        """[-1, 1] values ``[..., dim]`` -> robot units (float64), OpenVLA's formula."""
        x = np.asarray(normalized, dtype=np.float64)
        low, high = np.asarray(self.q01), np.asarray(self.q99)
        return np.where(np.asarray(self.mask), 0.5 * (x + 1.0) * (high - low) + low, x)

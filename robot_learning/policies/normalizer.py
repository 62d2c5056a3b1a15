"""Per-feature affine normalization, fitted on dataset statistics and saved with the weights.

Why a module: training and every later use of a checkpoint (evaluation, the policy server) must
normalise with exactly the same numbers. They are computed once from the store's statistics
(:mod:`robot_learning.data.stats`) and saved as ``normalizer.safetensors`` beside the weights.

Modes: ``limits`` maps [min, max] to [-1, 1] (Diffusion Policy's default for actions and
proprioception, so clipped diffusion samples stay inside the demonstrated range); ``gaussian``
maps mean/std to 0/1 (heavy-tailed signals such as contact forces). Constant elements get unit
scale so they pass through centred instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file

NormMode = Literal["limits", "gaussian"]
RANGE_EPS = 1e-4


class Normalizer:
    """``normalize(key, x) = x * scale + offset`` per feature element, invertible."""

    def __init__(self) -> None:
        self.params: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def fit(
        stats: Mapping[str, Mapping[str, Any]],
        modes: Mapping[str, NormMode],
        shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> Normalizer:
        """Build from ``{key: {"min","max","mean","std"}}`` statistics; ``modes[key]`` picks.

        ``shapes`` reshapes flat per-element statistics to each feature's shape (e.g. tactile
        grids), so they broadcast against ``[..., *shape]`` values.
        """
        norm = Normalizer()
        for key, mode in modes.items():
            if key not in stats:
                raise KeyError(f"no statistics for feature {key!r}; have {sorted(stats)}")
            s = {k: np.asarray(v, dtype=np.float64) for k, v in stats[key].items()}
            if mode == "limits":
                span = s["max"] - s["min"]
                scale = np.where(span > RANGE_EPS, 2.0 / np.maximum(span, RANGE_EPS), 1.0)
                offset = np.where(
                    span > RANGE_EPS, -1.0 - s["min"] * scale, -(s["max"] + s["min"]) / 2
                )
            elif mode == "gaussian":
                scale = 1.0 / np.maximum(s["std"], RANGE_EPS)
                offset = -s["mean"] * scale
            else:
                raise ValueError(f"unknown normalization mode {mode!r}; valid: limits, gaussian")
            shape = (shapes or {}).get(key)
            if shape is not None and scale.size == int(np.prod(shape)):
                scale, offset = scale.reshape(shape), offset.reshape(shape)
            norm.set(
                key,
                torch.tensor(scale, dtype=torch.float32),
                torch.tensor(offset, dtype=torch.float32),
            )
        return norm

    def set(self, key: str, scale: torch.Tensor, offset: torch.Tensor) -> None:
        self.params[key] = (scale, offset)

    def keys(self) -> list[str]:
        return list(self.params)

    def _get(self, key: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            scale, offset = self.params[key]
        except KeyError:
            raise KeyError(f"normalizer has no feature {key!r}; it has {self.keys()}") from None
        return scale.to(like.device, like.dtype), offset.to(like.device, like.dtype)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        scale, offset = self._get(key, x)
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        scale, offset = self._get(key, y)
        return (y - offset) / scale

    # ---- persistence (safetensors, never pickle) -----------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for key, (scale, offset) in self.params.items():
            out[f"{key}.scale"] = scale.contiguous()
            out[f"{key}.offset"] = offset.contiguous()
        return out

    def save(self, path: str | Path) -> None:
        save_file(self.state_tensors(), str(path))

    @staticmethod
    def from_tensors(tensors: Mapping[str, torch.Tensor]) -> Normalizer:
        norm = Normalizer()
        keys = sorted({name.rsplit(".", 1)[0] for name in tensors})
        for key in keys:
            try:
                norm.set(key, tensors[f"{key}.scale"], tensors[f"{key}.offset"])
            except KeyError as exc:
                raise ValueError(f"normalizer entry for {key!r} lacks {exc.args[0]!r}") from None
        return norm

    @staticmethod
    def load(path: str | Path) -> Normalizer:
        return Normalizer.from_tensors(load_file(str(path)))

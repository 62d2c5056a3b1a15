"""Running mean/std (Welford, batched) for residual inputs and PPO's return scaling.

Why not the base's normalizer alone: RL visits states the demonstrations never did, so the
residual's inputs are re-standardised on what the rollouts actually see. The statistics are
frozen into the checkpoint's ``normalizer.safetensors`` as an ordinary ``gaussian`` entry.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-8
CLIP = 10.0


class RunningMeanStd:
    """Mean and variance of a stream of ``[B, *shape]`` batches, mergeable in one pass."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = EPS

    def update(self, batch: np.ndarray) -> None:
        x = np.asarray(batch, np.float64)
        if x.shape[0] == 0:
            return
        mean, var, n = x.mean(0), x.var(0), x.shape[0]
        delta = mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=x.dtype)
        std = torch.as_tensor(np.sqrt(self.var + EPS), dtype=x.dtype)
        return ((x - mean) / std).clamp(-CLIP, CLIP)

    # ---- persistence ---------------------------------------------------------------------------
    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        return {
            f"{prefix}.mean": torch.from_numpy(np.array(self.mean, np.float64)),
            f"{prefix}.var": torch.from_numpy(np.array(self.var, np.float64)),
            f"{prefix}.count": torch.tensor([self.count], dtype=torch.float64),
        }

    def load(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        try:
            self.mean = np.array(tensors[f"{prefix}.mean"].numpy(), np.float64)
            self.var = np.array(tensors[f"{prefix}.var"].numpy(), np.float64)
            self.count = float(tensors[f"{prefix}.count"][0])
        except KeyError as exc:
            raise ValueError(f"saved state lacks {exc.args[0]!r}") from None

    def set_scale_offset(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        """The inverse of :meth:`scale_offset`: statistics back from a saved normalizer."""
        std = 1.0 / scale.double().numpy()
        self.mean = -offset.double().numpy() * std
        self.var = np.maximum(std**2 - EPS, 0.0)

    def scale_offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``x * scale + offset`` form (the policy Normalizer's ``gaussian`` mode)."""
        std = np.sqrt(self.var + EPS)
        return (
            torch.tensor(1.0 / std, dtype=torch.float32),
            torch.tensor(-self.mean / std, dtype=torch.float32),
        )

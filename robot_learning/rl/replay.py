"""A replay buffer of residual transitions in flat numpy arrays, saved as safetensors.

Features are stored raw (before standardisation) so a buffer stays valid when the feature
statistics change; the residual is stored in its unit form ([-1, 1], before the bound).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

FIELDS = ("features", "residual", "reward", "done", "next_features")


class ReplayBuffer:
    """A ring buffer of ``(features, residual, reward, done, next_features)``."""

    def __init__(self, capacity: int, feature_dim: int, action_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.data = {
            "features": np.zeros((capacity, feature_dim), np.float32),
            "residual": np.zeros((capacity, action_dim), np.float32),
            "reward": np.zeros(capacity, np.float32),
            "done": np.zeros(capacity, np.float32),
            "next_features": np.zeros((capacity, feature_dim), np.float32),
        }
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        features: np.ndarray,
        residual: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        next_features: np.ndarray,
    ) -> None:
        """Append a batch of transitions (overwriting the oldest once full)."""
        rows = {
            "features": features,
            "residual": residual,
            "reward": reward,
            "done": done,
            "next_features": next_features,
        }
        n = len(reward)
        for name, values in rows.items():
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} rows, reward has {n}")
        idx = (self.cursor + np.arange(n)) % self.capacity
        for name, values in rows.items():
            self.data[name][idx] = values
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, batch)
        return {name: torch.from_numpy(arr[idx]) for name, arr in self.data.items()}

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        tensors = {
            name: torch.from_numpy(arr[: self.size].copy()) for name, arr in self.data.items()
        }
        tensors["meta"] = torch.tensor([self.size, self.cursor, self.capacity], dtype=torch.int64)
        save_file(tensors, str(path))

    def load(self, path: str | Path) -> None:
        tensors = load_file(str(path))
        size, cursor, capacity = (int(v) for v in tensors["meta"])
        if capacity != self.capacity:
            raise ValueError(
                f"{path}: saved with capacity {capacity}, this buffer has {self.capacity}"
            )
        for name in FIELDS:
            values = tensors[name].numpy()
            if values.shape[1:] != self.data[name].shape[1:]:
                raise ValueError(
                    f"{path}: {name} has shape {values.shape[1:]}, expected "
                    f"{self.data[name].shape[1:]}"
                )
            self.data[name][:size] = values
        self.size, self.cursor = size, cursor

"""Tactile-grid encoder: per-taxel force images ``[rows, cols, 3]`` -> a feature vector.

Why a small conv net and not a flat MLP: contact patterns (where on the pad, which way the
shear points) are local and translate across the grid; two 3x3 convolutions see them with a
handful of parameters. Inputs are normalised forces (see the policy's normalizer).
"""

from __future__ import annotations

import torch
from torch import nn


class TactileEncoder(nn.Module):
    """``[N, rows, cols, C]`` float -> ``[N, feature_dim]``."""

    def __init__(self, grid_shape: tuple[int, ...], feature_dim: int) -> None:
        super().__init__()
        rows, cols, channels = grid_shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1),
            nn.Mish(),
            nn.Conv2d(16, 16, kernel_size=3, padding=1),
            nn.Mish(),
            nn.Flatten(),
            nn.Linear(16 * rows * cols, feature_dim),
            nn.LayerNorm(feature_dim),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return self.net(grid.permute(0, 3, 1, 2))

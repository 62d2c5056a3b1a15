"""Transformer denoiser: action tokens attend to each other and to observation tokens.

Why offered beside the UNet: it scales with width/depth on a GPU and handles long horizons
without the UNet's divisibility constraint. The conditioning vector is split back into one token
per observation step plus a timestep token (the "time-series diffusion transformer" of
Diffusion Policy, simplified to an encoder over the joint sequence).
"""

from __future__ import annotations

import torch
from torch import nn

from robot_learning.policies.denoisers.embedding import timestep_mlp


class TransformerDenoiser(nn.Module):
    """``(x [B, T, A], t [B], cond [B, n_obs * D]) -> [B, T, A]``."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        horizon: int,
        n_obs_steps: int,
        dim: int = 128,
        layers: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cond_dim % n_obs_steps:
            raise ValueError(f"cond_dim {cond_dim} is not a multiple of n_obs_steps {n_obs_steps}")
        self.n_obs_steps = n_obs_steps
        self.action_in = nn.Linear(action_dim, dim)
        self.cond_in = nn.Linear(cond_dim // n_obs_steps, dim)
        self.step_embed = timestep_mlp(dim, dim)
        self.pos = nn.Parameter(torch.zeros(1, 1 + n_obs_steps + horizon, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, action_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        obs_tokens = self.cond_in(cond.reshape(batch, self.n_obs_steps, -1))
        tokens = torch.cat([self.step_embed(t).unsqueeze(1), obs_tokens, self.action_in(x)], dim=1)
        h = self.encoder(tokens + self.pos[:, : tokens.shape[1]])
        return self.head(self.norm(h[:, 1 + self.n_obs_steps :]))

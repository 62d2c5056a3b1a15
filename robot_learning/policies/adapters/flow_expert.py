"""The flow-matching action expert of a pi0 / SmolVLA-style VLA, and its Euler sampler.

Why this shape: pi0 and SmolVLA keep the VLM as a context encoder and let a much smaller
"action expert" predict a velocity field over a whole action chunk. Here the expert is a small
transformer decoder: chunk positions are the queries (noisy action + flow time, mixed by an MLP
as in pi0), the backbone's final hidden states are cross-attended as context. Conventions follow
pi0: ``x_t = t * noise + (1 - t) * actions``, target velocity ``noise - actions``, sampling
integrates from ``t = 1`` (noise) to ``t = 0`` with ``num_steps`` Euler steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t[B]) -> v


def sinusoidal_time(
    t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0
) -> torch.Tensor:
    """pi0's sine-cosine embedding of flow time ``t`` [B] -> [B, dim] (periods 4e-3 .. 4)."""
    fraction = torch.linspace(0.0, 1.0, dim // 2, device=t.device, dtype=torch.float32)
    period = min_period * (max_period / min_period) ** fraction
    angle = t.float()[:, None] * (2.0 * math.pi / period)[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class FlowActionExpert(nn.Module):
    """``v(x_t, t | context)`` for an action chunk ``[B, chunk_len, action_dim]``."""

    def __init__(
        self,
        action_dim: int,
        chunk_len: int,
        context_dim: int,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if width % 2 or width % heads:
            raise ValueError(f"expert width {width} must be even and divisible by heads {heads}")
        self.action_dim, self.chunk_len, self.width = action_dim, chunk_len, width
        self.action_in = nn.Linear(action_dim, width)
        self.position = nn.Parameter(torch.randn(chunk_len, width) * 0.02)
        self.time_mix = nn.Sequential(
            nn.Linear(2 * width, width), nn.SiLU(), nn.Linear(width, width)
        )
        self.context_in = nn.Linear(context_dim, width)
        layer = nn.TransformerDecoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerDecoder(layer, depth)
        self.out = nn.Linear(width, action_dim)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor
    ) -> torch.Tensor:
        """``context_mask`` [B, L] is true where a context token is real (not padding)."""
        h = self.action_in(x) + self.position
        time = sinusoidal_time(t, self.width).to(h.dtype)[:, None, :].expand_as(h)
        h = self.time_mix(torch.cat([h, time], dim=-1))
        memory = self.context_in(context.to(h.dtype))
        h = self.blocks(h, memory, memory_key_padding_mask=~context_mask.bool())
        return self.out(h)


def euler_sample(velocity: Velocity, noise: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Integrate ``dx/dt = v`` from ``t = 1`` (``noise``) to ``t = 0`` in ``num_steps`` steps."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dt = 1.0 / num_steps
    x = noise
    for i in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - i * dt, device=x.device, dtype=torch.float32)
        x = x - dt * velocity(x, t)
    return x


def flow_matching_loss(
    velocity: Velocity, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """pi0's training objective (for fine-tuning a converted expert): MSE to ``noise - actions``."""
    tt = t.view(-1, *([1] * (actions.dim() - 1)))
    x_t = tt * noise + (1.0 - tt) * actions
    return F.mse_loss(velocity(x_t, t), noise - actions)

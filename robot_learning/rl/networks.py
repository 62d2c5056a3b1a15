"""Small MLPs for residual RL: a Gaussian actor, a value net and a layer-normed Q ensemble.

Why these shapes: the residual starts as (nearly) zero so the combined policy starts as the base
(ResiP initialises its last layer this way); critics use LayerNorm, which keeps Q-values bounded
at high update-to-data ratios (RLPD, ResFiT).
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_STD_MIN = -5.0
LOG_STD_MAX = 1.0


def mlp(
    in_dim: int, hidden: tuple[int, ...], out_dim: int, layer_norm: bool = False
) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(nn.Tanh() if not layer_norm else nn.ReLU())
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class GaussianActor(nn.Module):
    """``features -> (mean, log_std)`` of the residual in normalized units (bound = 1).

    ``squash`` decides how a sample becomes a bounded residual: ``clip`` (PPO: the log-prob is
    the Gaussian's, the clip happens at execution) or ``tanh`` (SAC: a squashed Gaussian).
    ``state_std`` makes the std an output of the net (SAC) instead of one learned vector (PPO).
    """

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        squash: str = "clip",
        state_std: bool = False,
        init_log_std: float = -1.0,
        init_scale: float = 0.01,
    ) -> None:
        super().__init__()
        if squash not in ("clip", "tanh"):
            raise ValueError(f"unknown squash {squash!r}; valid: clip, tanh")
        self.squash = squash
        self.state_std = state_std
        self.action_dim = action_dim
        self.body = mlp(in_dim, hidden, action_dim * (2 if state_std else 1))
        last = self.body[-1]
        assert isinstance(last, nn.Linear)
        nn.init.uniform_(last.weight, -init_scale, init_scale)
        nn.init.zeros_(last.bias)
        if state_std:
            with torch.no_grad():
                last.bias[action_dim:] = init_log_std
            self.log_std = None
        else:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(init_log_std)))

    def distribution(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(features)
        if self.state_std:
            mean, log_std = out.split(self.action_dim, dim=-1)
        else:
            assert self.log_std is not None
            mean, log_std = out, self.log_std.expand_as(out)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def deterministic(self, features: torch.Tensor) -> torch.Tensor:
        """The bounded residual in [-1, 1] the deployed policy executes (the mode)."""
        mean, _ = self.distribution(features)
        return self.bound(mean)

    def bound(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.tanh(raw) if self.squash == "tanh" else raw.clamp(-1.0, 1.0)

    def sample_tanh(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC: a reparameterised squashed sample in [-1, 1] and its log-probability."""
        mean, log_std = self.distribution(features)
        std = log_std.exp()
        raw = mean + std * torch.randn_like(mean)
        action = torch.tanh(raw)
        log_prob = gaussian_log_prob(raw, mean, log_std) - (
            2 * (math.log(2) - raw - nn.functional.softplus(-2 * raw))
        ).sum(-1)
        return action, log_prob


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    var = (2 * log_std).exp()
    return (-((x - mean) ** 2) / (2 * var) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(-1)


class QEnsemble(nn.Module):
    """``num_q`` independent LayerNorm critics ``Q(features, residual)`` evaluated together."""

    def __init__(self, in_dim: int, action_dim: int, hidden: tuple[int, ...], num_q: int) -> None:
        super().__init__()
        if num_q < 2:
            raise ValueError(f"num_q must be >= 2 (clipped double Q), got {num_q}")
        self.members = nn.ModuleList(
            mlp(in_dim + action_dim, hidden, 1, layer_norm=True) for _ in range(num_q)
        )

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q-values ``[num_q, B]``."""
        x = torch.cat([features, action], dim=-1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])

"""Conditional 1D temporal UNet with FiLM conditioning (Chi et al., Diffusion Policy).

Why this denoiser: convolutions over the action sequence give smooth chunks, and FiLM lets the
observation features scale and shift every residual block. Widths are configurable so a recipe
can size it for a 2-core CPU (``[64, 128, 256]``, ~4M parameters) or a GPU (``[256, 512, 1024]``).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from robot_learning.policies.denoisers.embedding import timestep_mlp


def conv_block(c_in: int, c_out: int, kernel: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
        nn.GroupNorm(min(groups, c_out), c_out),
        nn.Mish(),
    )


class FiLMResBlock(nn.Module):
    """Two conv blocks; the conditioning vector scales and shifts the first one's output."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.block1 = conv_block(c_in, c_out, kernel, groups)
        self.block2 = conv_block(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.block1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        out = self.block2(out * scale + bias)
        return out + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """``(x [B, T, A], t [B], cond [B, C]) -> [B, T, A]``."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        channels: list[int],
        kernel: int = 5,
        groups: int = 8,
        step_embed_dim: int = 64,
    ) -> None:
        super().__init__()
        self.step_embed = timestep_mlp(step_embed_dim, step_embed_dim)
        full_cond = step_embed_dim + cond_dim
        dims = [action_dim, *channels]
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(itertools.pairwise(dims)):
            last = i == len(channels) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        FiLMResBlock(c_in, c_out, full_cond, kernel, groups),
                        FiLMResBlock(c_out, c_out, full_cond, kernel, groups),
                        nn.Conv1d(c_out, c_out, 3, stride=2, padding=1)
                        if not last
                        else nn.Identity(),
                    ]
                )
            )
        mid = channels[-1]
        self.mid = nn.ModuleList(
            [FiLMResBlock(mid, mid, full_cond, kernel, groups) for _ in range(2)]
        )
        self.up = nn.ModuleList()
        rev = list(reversed(channels))
        for c_out, c_in in itertools.pairwise(rev):
            self.up.append(
                nn.ModuleList(
                    [
                        FiLMResBlock(c_out * 2, c_in, full_cond, kernel, groups),
                        FiLMResBlock(c_in, c_in, full_cond, kernel, groups),
                        nn.ConvTranspose1d(c_in, c_in, 4, stride=2, padding=1),
                    ]
                )
            )
        self.final = nn.Sequential(
            conv_block(channels[0], channels[0], kernel, groups),
            nn.Conv1d(channels[0], action_dim, 1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.step_embed(t), cond], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for level in self.down:  # [res1, res2, downsample]
            assert isinstance(level, nn.ModuleList)
            h = level[1](level[0](h, c), c)
            skips.append(h)
            h = level[2](h)
        for res in self.mid:
            h = res(h, c)
        for level in self.up:  # [res1, res2, upsample]
            assert isinstance(level, nn.ModuleList)
            h = torch.cat([h, skips.pop()], dim=1)
            h = level[2](level[1](level[0](h, c), c))
        return self.final(h).transpose(1, 2)

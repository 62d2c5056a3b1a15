"""Exponential moving average of weights, with Diffusion Policy's warm-up schedule.

Why: diffusion policies sample markedly better from EMA weights; the warm-up
(``decay = 1 - (1 + step) ** -power``, capped) lets early weights move fast and later ones settle.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, power: float = 0.75, max_decay: float = 0.999) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power = power
        self.max_decay = max_decay
        self.step = 0

    def decay(self) -> float:
        return min(self.max_decay, max(0.0, 1.0 - (1.0 + self.step) ** -self.power))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.decay()
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.mul_(d).add_(p.detach(), alpha=1.0 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)
        self.step += 1

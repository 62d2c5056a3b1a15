"""Networks and optimizers of an RL agent as flat safetensors + JSON (never a pickle)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from robot_learning.train.state import load_optimizer, optimizer_tensors


def part(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.``, with the prefix removed."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def pack(
    modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``name.<key>`` tensors of every module and optimizer; the optimizers' groups as JSON."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    groups: dict[str, Any] = {}
    for name, opt in optimizers.items():
        values, groups[name] = optimizer_tensors(opt)
        tensors.update({f"{name}.{k}": v for k, v in values.items()})
    return tensors, groups


def unpack(
    tensors: Mapping[str, torch.Tensor],
    groups: Mapping[str, Any],
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> None:
    """Restore what :func:`pack` wrote (strict: every module tensor must fit)."""
    for name, module in modules.items():
        module.load_state_dict(part(tensors, name))
    for name, opt in optimizers.items():
        load_optimizer(opt, part(tensors, name), groups[name])

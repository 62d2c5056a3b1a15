"""Resumable training state without pickle: weights, optimizer and RNG as safetensors + JSON.

Why not ``torch.save(optimizer.state_dict())``: that is a pickle. Optimizer tensors are
flattened into ``optimizer.safetensors`` (``state.<param index>.<name>``); the step counter,
scheduler position, parameter-group hyper-parameters and RNG states go to ``state.json`` and
``rng.safetensors``. Each save is written to a staging directory and renamed into place, so a
kill mid-save leaves the previous state whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from robot_learning.policies.checkpoint import (
    cpu_tensors,
    staged_dir,
    whole_dir,
    write_json_atomic,
)

STATE_DIR = "train_state"


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"state.{idx}.{name}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def load_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_train_state(
    out: Path,
    model: torch.nn.Module,
    ema_model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
    np_rng: np.random.Generator,
) -> None:
    with staged_dir(out / STATE_DIR) as directory:
        save_file(cpu_tensors(model.state_dict()), str(directory / "model.safetensors"))
        save_file(cpu_tensors(ema_model.state_dict()), str(directory / "ema.safetensors"))
        tensors, groups = optimizer_tensors(optimizer)
        save_file(tensors, str(directory / "optimizer.safetensors"))
        save_file({"torch": torch.get_rng_state()}, str(directory / "rng.safetensors"))
        write_json_atomic(
            directory / "state.json",
            {**info, "param_groups": groups, "numpy_rng": np_rng.bit_generator.state},
        )


def has_train_state(out: Path) -> bool:
    return whole_dir(out / STATE_DIR) is not None


def load_train_state(
    out: Path,
    model: torch.nn.Module,
    ema_model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    np_rng: np.random.Generator,
) -> dict[str, Any]:
    """Restore everything saved by :func:`save_train_state`; returns the ``info`` dict."""
    directory = whole_dir(out / STATE_DIR)
    if directory is None:
        raise FileNotFoundError(f"{out} holds no training state")
    info = json.loads((directory / "state.json").read_text())
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    ema_model.load_state_dict(load_file(str(directory / "ema.safetensors")))
    load_optimizer(
        optimizer, load_file(str(directory / "optimizer.safetensors")), info.pop("param_groups")
    )
    torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch"])
    np_rng.bit_generator.state = info.pop("numpy_rng")
    return info

"""Policies: the :class:`Policy` interface, the registry of policy types, and checkpoint loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import CheckpointError, read_config
from robot_learning.registry import Registry

POLICIES: Registry[Policy] = Registry("policy")
POLICIES.register(
    "diffusion",
    "robot_learning.policies.diffusion_io:load_diffusion",
    "diffusion / flow-matching policy over action chunks (UNet or transformer denoiser)",
)
POLICIES.register(
    "residual",
    "robot_learning.rl.residual_policy:load_residual",
    "a frozen base policy (under base/) plus a bounded per-step residual learned by RL",
)
POLICIES.register(
    "scripted_lift",
    "robot_learning.policies.scripted:load_scripted_lift",
    "observation-only scripted lift controller (no weights): a baseline and a stack test fixture",
)
POLICIES.register(
    "openvla_tokens",
    "robot_learning.policies.adapters.openvla:load_openvla_tokens",
    "OpenVLA-style VLA adapter: a Llava VLM decoding one action as 256-bin action tokens",
)
POLICIES.register(
    "flow_vla",
    "robot_learning.policies.adapters.flow_vla:load_flow_vla",
    "pi0/SmolVLA-style VLA adapter: a Llava VLM context + a flow-matching action expert",
)
POLICIES.register(
    "value_guided",
    "robot_learning.policies.value_guided:load_value_guided",
    "any policy (under base/) whose K sampled chunks are ranked by an offline critic (V-GPS)",
)


def load_policy(path: str | Path, device: str = "cpu", **overrides: Any) -> Policy:
    """Load any checkpoint directory; ``overrides`` (e.g. ``inference_steps``) go to its loader."""
    config = read_config(path)
    name = str(config["policy"])
    if name not in POLICIES:
        raise CheckpointError(
            f"{path}: unknown policy type {name!r}; valid: {', '.join(POLICIES.names())}"
        )
    return POLICIES.make(name, path, device=device, **overrides)


__all__ = ["POLICIES", "CheckpointError", "Policy", "load_policy"]

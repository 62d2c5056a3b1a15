"""Saving and loading :class:`DiffusionPolicy` checkpoints (safetensors + JSON, no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_learning.policies.checkpoint import (
    CheckpointError,
    read_config,
    read_tensors,
    save_policy_files,
    specs_from_config,
)
from robot_learning.policies.diffusion import DiffusionPolicy
from robot_learning.policies.diffusion_config import DiffusionConfig

POLICY_TYPE = "diffusion"


def save_diffusion(
    policy: DiffusionPolicy,
    directory: str | Path,
    extra: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write ``policy`` (or ``state``, e.g. EMA weights of the same architecture) to a directory."""
    config = {
        "config": policy.config.to_json(),
        "observation_spec": policy.observation_spec.to_json(),
        "action_spec": policy.action_spec.to_json(),
        "control_hz": policy.control_hz,
        "parameters": policy.num_parameters(),
        **(extra or {}),
    }
    return save_policy_files(
        directory, POLICY_TYPE, state or policy.state_dict(), policy.normalizer, config
    )


def load_diffusion(
    directory: str | Path, device: str = "cpu", inference_steps: int | None = None, **overrides: Any
) -> DiffusionPolicy:
    """Rebuild the policy from ``config.json`` and load its weights (strict: every tensor fits)."""
    config = read_config(directory)
    try:
        cfg_json = dict(config["config"])
    except KeyError:
        raise CheckpointError(f"{directory}: config.json lacks the policy 'config'") from None
    cfg_json.update(overrides)
    if inference_steps is not None:
        cfg_json["inference_steps"] = inference_steps
    try:
        policy_config = DiffusionConfig.from_json(cfg_json)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: invalid policy config: {exc}") from None
    obs_spec, action_spec = specs_from_config(config)
    state, normalizer = read_tensors(directory)
    policy = DiffusionPolicy(
        policy_config, obs_spec, action_spec, normalizer, float(config.get("control_hz", 20.0))
    )
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{directory}: weights do not fit the config: {exc}") from None
    return policy.to(device).eval()

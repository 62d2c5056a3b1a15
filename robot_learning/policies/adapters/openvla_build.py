"""Build a tiny random ``openvla_tokens`` checkpoint (tests, benchmarks, format examples)."""

from __future__ import annotations

from pathlib import Path

from transformers import LlavaForConditionalGeneration

from robot_learning.policies.adapters.action_bins import N_BINS, ActionNormStats
from robot_learning.policies.adapters.features import AdapterFeatures
from robot_learning.policies.adapters.layout import write_adapter_checkpoint
from robot_learning.policies.adapters.openvla import POLICY_TYPE, OpenVLASettings
from robot_learning.policies.adapters.tiny import prepare_directory, tiny_specs, write_tiny_backbone
from robot_learning.specs import SpecDict


def default_norm_stats(action_dim: int) -> ActionNormStats:
    """Small end-effector deltas; a last (gripper) dimension left un-normalised, as in OpenVLA."""
    mask = (True,) * (action_dim - 1) + (False,) if action_dim > 1 else (True,)
    q01 = tuple(-0.02 * (i + 1) for i in range(action_dim))
    q99 = tuple(0.03 * (i + 1) for i in range(action_dim))
    return ActionNormStats(q01, q99, mask)


def build_tiny_openvla(
    directory: str | Path,
    observation_spec: SpecDict | None = None,
    action_spec: SpecDict | None = None,
    *,
    norm_stats: ActionNormStats | None = None,
    image_size: int = 32,
    hidden_size: int = 64,
    layers: int = 2,
    control_hz: float = 5.0,
    seed: int = 0,
) -> Path:
    """Write a complete ``openvla_tokens`` checkpoint with a random ~0.3M-parameter Llava.

    Default specs: one 64x64 camera ``image``, an instruction ``task``, a 7-dim ``action``.
    The vision tower takes ``image_size`` pixels; camera images are resized to it.
    """
    default_obs, default_action = tiny_specs(action_dim=7)
    obs_spec = observation_spec or default_obs
    act_spec = action_spec or default_action
    AdapterFeatures.from_spec(obs_spec, policy=POLICY_TYPE, max_images=1, allow_state=False)
    action_dim = sum(spec.size for _, spec in act_spec.items())
    out = prepare_directory(directory)
    _, vocab_end = write_tiny_backbone(
        out,
        LlavaForConditionalGeneration,
        n_action_tokens=N_BINS,
        image_size=image_size,
        hidden_size=hidden_size,
        layers=layers,
        seed=seed,
    )
    settings = OpenVLASettings(
        norm_stats=norm_stats or default_norm_stats(action_dim), action_vocab_end=vocab_end
    )
    return write_adapter_checkpoint(
        out,
        POLICY_TYPE,
        observation_spec=obs_spec,
        action_spec=act_spec,
        control_hz=control_hz,
        adapter=settings.to_json(),
    )

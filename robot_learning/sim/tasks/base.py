"""The Task interface: what a scene adds to the robot cell and how it is scored.

One file per task (MuJoCo Playground style) implements this: objects added to the MjSpec,
initial-state sampling, privileged low-dim observations, shaped and sparse reward, success and
the task's ``domain_randomize`` ranges.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import mujoco
import numpy as np

from robot_learning.sim.randomization import (
    REAL_PROXY_RANGES,
    TRAIN_RANGES,
    DRRanges,
    DRSample,
    ModelDefaults,
    Variant,
    randomize_scene,
)
from robot_learning.specs import FeatureSpec


class Task(ABC):
    """A manipulation task in the shared UR5e cell."""

    name: str = ""
    description: str = ""
    max_episode_steps: int = 200  # at the default 20 Hz control rate
    train_ranges: DRRanges = TRAIN_RANGES
    real_proxy_ranges: DRRanges = REAL_PROXY_RANGES
    object_bodies: tuple[str, ...] = ()
    colored_geoms: tuple[str, ...] = ()
    # observation keys whose task-deciding errors are far below their range, with the scale of
    # those errors: residual RL also feeds them as tanh(value / scale) (ResidualConfig)
    precision_scales: ClassVar[dict[str, float]] = {}

    @abstractmethod
    def build(self, spec: mujoco.MjSpec) -> None:
        """Add the task's objects, sites and fixtures to the robot cell."""

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache ids once the model is compiled."""
        self.model = model

    @abstractmethod
    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """Sample the initial object state into ``data`` (robot is already at home)."""

    @abstractmethod
    def observation_features(self) -> dict[str, FeatureSpec]:
        """Privileged low-dim (and language) features the task adds to observations."""

    @abstractmethod
    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        """Values for :meth:`observation_features`."""

    @abstractmethod
    def shaped_reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Dense reward in [0, 1] that guides exploration toward success."""

    @abstractmethod
    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """True when the task is accomplished."""

    def instruction(self) -> str:
        """Natural-language statement of the current episode's goal."""
        return self.description

    def domain_randomize(
        self,
        model: mujoco.MjModel,
        defaults: ModelDefaults,
        rng: np.random.Generator,
        variant: Variant,
    ) -> DRSample:
        """Draw physics/visual/timing parameters for ``variant`` (``default`` = nominal)."""
        if variant == "default":
            defaults.restore(model)
            return DRSample()
        ranges = self.train_ranges if variant == "train" else self.real_proxy_ranges
        return randomize_scene(model, defaults, rng, ranges, self.object_bodies, self.colored_geoms)

    def privileged_state(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        """Ground-truth state for scripted experts (not part of observations)."""
        return self.observe(model, data)


def free_body_pose(
    model: mujoco.MjModel, data: mujoco.MjData, body: str
) -> tuple[np.ndarray, np.ndarray]:
    bid = model.body(body).id
    return data.xpos[bid].copy(), data.xquat[bid].copy()


def set_free_body_pose(
    model: mujoco.MjModel, data: mujoco.MjData, joint: str, pos: np.ndarray, quat: np.ndarray
) -> None:
    adr = model.jnt_qposadr[model.joint(joint).id]
    data.qpos[adr : adr + 3] = pos
    data.qpos[adr + 3 : adr + 7] = quat
    dadr = model.jnt_dofadr[model.joint(joint).id]
    data.qvel[dadr : dadr + 6] = 0.0


def add_free_box(
    spec: mujoco.MjSpec,
    name: str,
    half_size: tuple[float, float, float],
    rgba: tuple[float, float, float, float],
    mass: float,
    friction: float = 1.0,
) -> None:
    """A free-floating box body ``name`` with geom ``name`` and free joint ``name + '_joint'``."""
    body = spec.worldbody.add_body()
    body.name = name
    body.pos = [0.5, 0.0, half_size[2]]
    joint = body.add_freejoint()
    joint.name = name + "_joint"
    geom = body.add_geom()
    geom.name = name
    geom.type = mujoco.mjtGeom.mjGEOM_BOX
    geom.size = list(half_size)
    geom.rgba = list(rgba)
    geom.mass = mass
    geom.friction = [friction, 0.005, 0.0001]
    geom.condim = 4

"""Lift: grasp a cube from a random pose on the table and raise it 10 cm."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from robot_learning.sim.kinematics import yaw_quat
from robot_learning.sim.tasks.base import Task, add_free_box, free_body_pose, set_free_body_pose
from robot_learning.specs import FeatureSpec

CUBE_HALF = 0.02
LIFT_HEIGHT = 0.10


class LiftTask(Task):
    name = "lift"
    description = "pick up the cube and lift it"
    max_episode_steps = 150
    object_bodies = ("cube",)
    colored_geoms = ("cube",)

    def build(self, spec: mujoco.MjSpec) -> None:
        add_free_box(spec, "cube", (CUBE_HALF,) * 3, (0.85, 0.15, 0.1, 1.0), mass=0.08)

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        xy = np.array([rng.uniform(0.42, 0.62), rng.uniform(-0.15, 0.15)])
        yaw = rng.uniform(-np.pi, np.pi)
        set_free_body_pose(model, data, "cube_joint", np.array([*xy, CUBE_HALF]), yaw_quat(yaw))

    def observation_features(self) -> dict[str, FeatureSpec]:
        return {
            "object_pos": FeatureSpec((3,), "float32", "lowdim", description="cube centre, m"),
            "object_quat": FeatureSpec((4,), "float32", "lowdim", description="cube wxyz"),
        }

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        pos, quat = free_body_pose(model, data, "cube")
        return {"object_pos": pos.astype(np.float32), "object_quat": quat.astype(np.float32)}

    def shaped_reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        return lift_reward(model, data, "cube")

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(free_body_pose(model, data, "cube")[0][2] >= CUBE_HALF + LIFT_HEIGHT)


def lift_reward(model: mujoco.MjModel, data: mujoco.MjData, body: str) -> float:
    """Reach (tcp to object), then height progress; in [0, 1]."""
    pos = free_body_pose(model, data, body)[0]
    tcp = data.site_xpos[model.site("tcp").id]
    reach = 1.0 - np.tanh(8.0 * float(np.linalg.norm(tcp - pos)))
    height = float(np.clip((pos[2] - CUBE_HALF) / LIFT_HEIGHT, 0.0, 1.0))
    return 0.3 * reach + 0.7 * height

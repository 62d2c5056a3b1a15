"""Push: slide a puck to a target position marked on the table.

The puck is rotationally symmetric, so its pose on the table is its (x, y) position; the target
pose is a position with a 2.5 cm tolerance.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from robot_learning.sim.tasks.base import Task, free_body_pose, set_free_body_pose
from robot_learning.specs import FeatureSpec

PUCK_RADIUS = 0.03
PUCK_HALF_HEIGHT = 0.02
SUCCESS_TOL = 0.025


class PushTask(Task):
    name = "push"
    description = "push the puck onto the target"
    max_episode_steps = 200
    object_bodies = ("puck",)
    colored_geoms = ("puck", "target")

    def build(self, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body()
        body.name = "puck"
        body.pos = [0.5, 0.0, PUCK_HALF_HEIGHT]
        body.add_freejoint().name = "puck_joint"
        geom = body.add_geom()
        geom.name = "puck"
        geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
        geom.size = [PUCK_RADIUS, PUCK_HALF_HEIGHT, 0.0]
        geom.rgba = [0.1, 0.4, 0.9, 1.0]
        geom.mass = 0.12
        geom.friction = [0.6, 0.005, 0.0001]
        geom.condim = 4
        target = spec.worldbody.add_body()
        target.name = "target"
        target.pos = [0.6, 0.0, 0.0]
        mark = target.add_geom()
        mark.name = "target"
        mark.type = mujoco.mjtGeom.mjGEOM_CYLINDER
        mark.size = [SUCCESS_TOL, 0.0005, 0.0]
        mark.rgba = [0.1, 0.8, 0.2, 1.0]
        mark.contype = 0
        mark.conaffinity = 0

    def bind(self, model: mujoco.MjModel) -> None:
        super().bind(model)
        self.target_body = model.body("target").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        puck = np.array([rng.uniform(0.42, 0.58), rng.uniform(-0.12, 0.12)])
        for _ in range(100):
            angle = rng.uniform(-np.pi, np.pi)
            goal = puck + rng.uniform(0.10, 0.18) * np.array([np.cos(angle), np.sin(angle)])
            if 0.35 <= goal[0] <= 0.68 and abs(goal[1]) <= 0.22:
                break
        set_free_body_pose(
            model,
            data,
            "puck_joint",
            np.array([*puck, PUCK_HALF_HEIGHT]),
            np.array([1.0, 0.0, 0.0, 0.0]),
        )
        model.body_pos[self.target_body] = [goal[0], goal[1], 0.0005]

    def observation_features(self) -> dict[str, FeatureSpec]:
        return {
            "object_pos": FeatureSpec((3,), "float32", "lowdim", description="puck centre, m"),
            "target_pos": FeatureSpec((3,), "float32", "lowdim", description="target centre, m"),
        }

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        return {
            "object_pos": free_body_pose(model, data, "puck")[0].astype(np.float32),
            "target_pos": model.body_pos[self.target_body].astype(np.float32),
        }

    def _distance(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        puck = free_body_pose(model, data, "puck")[0]
        return float(np.linalg.norm(puck[:2] - model.body_pos[self.target_body][:2]))

    def shaped_reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        puck = free_body_pose(model, data, "puck")[0]
        tcp = data.site_xpos[model.site("tcp").id]
        reach = 1.0 - np.tanh(8.0 * float(np.linalg.norm(tcp - puck)))
        progress = 1.0 - np.tanh(5.0 * self._distance(model, data))
        return float(0.3 * reach + 0.7 * progress)

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        puck_z = free_body_pose(model, data, "puck")[0][2]
        return self._distance(model, data) < SUCCESS_TOL and puck_z < PUCK_HALF_HEIGHT + 0.01

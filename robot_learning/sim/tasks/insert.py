"""Insert: pick up a square peg and insert it into a square hole with 2 mm total clearance.

The peg is 20 mm square and the hole 22 mm (1 mm per side), so a few degrees of yaw error or a
millimetre of lateral error jams it: the precision task residual RL is for. The hole's fixture
is a static body moved per episode; its yaw is random, so the peg must be turned in hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mujoco
import numpy as np

from robot_learning.sim.kinematics import quat_yaw, wrap_angle, yaw_quat
from robot_learning.sim.tasks.base import Task, add_free_box, free_body_pose, set_free_body_pose
from robot_learning.specs import FeatureSpec

PEG_HALF = 0.010
PEG_HALF_LENGTH = 0.04
CLEARANCE = 0.002  # total (diametral) clearance
HOLE_HALF = PEG_HALF + CLEARANCE / 2
WALL = 0.012
HOLE_DEPTH = 0.04
INSERT_DEPTH = 0.02  # the peg bottom must be this far below the hole's rim


class InsertTask(Task):
    name = "insert"
    description = "insert the peg into the hole"
    max_episode_steps = 300
    object_bodies = ("peg",)
    colored_geoms = ("peg",)
    # a few millimetres and degrees decide the insertion
    precision_scales: ClassVar[dict[str, float]] = {"peg_in_hole": 0.005, "peg_yaw_error": 0.05}

    def build(self, spec: mujoco.MjSpec) -> None:
        add_free_box(
            spec,
            "peg",
            (PEG_HALF, PEG_HALF, PEG_HALF_LENGTH),
            (0.9, 0.6, 0.1, 1.0),
            mass=0.05,
            friction=0.8,
        )
        hole = spec.worldbody.add_body()
        hole.name = "hole"
        hole.pos = [0.5, 0.15, 0.0]
        outer = HOLE_HALF + WALL
        walls = {
            "hole_wall_px": ((HOLE_HALF + WALL / 2, 0.0), (WALL / 2, outer)),
            "hole_wall_nx": ((-HOLE_HALF - WALL / 2, 0.0), (WALL / 2, outer)),
            "hole_wall_py": ((0.0, HOLE_HALF + WALL / 2), (HOLE_HALF, WALL / 2)),
            "hole_wall_ny": ((0.0, -HOLE_HALF - WALL / 2), (HOLE_HALF, WALL / 2)),
        }
        for name, ((x, y), (sx, sy)) in walls.items():
            g = hole.add_geom()
            g.name = name
            g.type = mujoco.mjtGeom.mjGEOM_BOX
            g.size = [sx, sy, HOLE_DEPTH / 2]
            g.pos = [x, y, HOLE_DEPTH / 2]
            g.rgba = [0.35, 0.35, 0.4, 1.0]
            g.friction = [0.5, 0.005, 0.0001]
            g.condim = 4
        site = hole.add_site()
        site.name = "hole_center"
        site.pos = [0.0, 0.0, HOLE_DEPTH]
        site.size = [0.003, 0.0, 0.0]

    def bind(self, model: mujoco.MjModel) -> None:
        super().bind(model)
        self.hole_body = model.body("hole").id

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        hole = np.array([rng.uniform(0.45, 0.6), rng.uniform(0.05, 0.18)])
        if rng.random() < 0.5:
            hole[1] = -hole[1]
        peg = np.array([rng.uniform(0.42, 0.6), rng.uniform(-0.08, 0.08)])
        peg[1] = -np.sign(hole[1]) * abs(peg[1])  # the peg starts on the other side of the cell
        model.body_pos[self.hole_body] = [hole[0], hole[1], 0.0]
        model.body_quat[self.hole_body] = yaw_quat(rng.uniform(-np.pi / 4, np.pi / 4))
        set_free_body_pose(
            model,
            data,
            "peg_joint",
            np.array([*peg, PEG_HALF_LENGTH]),
            yaw_quat(rng.uniform(-np.pi / 4, np.pi / 4)),
        )

    def observation_features(self) -> dict[str, FeatureSpec]:
        return {
            "object_pos": FeatureSpec((3,), "float32", "lowdim", description="peg centre, m"),
            "object_quat": FeatureSpec((4,), "float32", "lowdim", description="peg wxyz"),
            "hole_pos": FeatureSpec((3,), "float32", "lowdim", description="hole rim centre, m"),
            "hole_quat": FeatureSpec((4,), "float32", "lowdim", description="hole wxyz"),
            "peg_in_hole": FeatureSpec(
                (3,),
                "float32",
                "lowdim",
                names=("x", "y", "z"),
                description="peg axis and bottom relative to the hole rim centre, hole frame, m",
            ),
            "peg_yaw_error": FeatureSpec(
                (1,), "float32", "lowdim", description="peg yaw minus hole yaw, mod 90 deg, rad"
            ),
        }

    def hole_pose(self, model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
        pos = model.body_pos[self.hole_body].copy()
        pos[2] += HOLE_DEPTH
        return pos, model.body_quat[self.hole_body].copy()

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        peg_pos, peg_quat = free_body_pose(model, data, "peg")
        hole_pos, hole_quat = self.hole_pose(model)
        return {
            "object_pos": peg_pos.astype(np.float32),
            "object_quat": peg_quat.astype(np.float32),
            "hole_pos": hole_pos.astype(np.float32),
            "hole_quat": hole_quat.astype(np.float32),
            "peg_in_hole": self.peg_in_hole(peg_pos, hole_pos, quat_yaw(hole_quat)),
            "peg_yaw_error": np.array([self.yaw_error(model, data)], np.float32),
        }

    @staticmethod
    def peg_in_hole(peg_pos: np.ndarray, hole_pos: np.ndarray, hole_yaw: float) -> np.ndarray:
        """The peg's axis (x, y) and bottom (z) relative to the hole's rim centre, hole frame.

        The error the insertion has to null, in the frame where it is judged: a policy reading it
        needs no subtraction of two absolute poses at millimetre precision. ``z`` is negative
        once the peg is in the hole; success is ``hypot(x, y) < 1.1 cm and z <= -2 cm``.
        """
        d = np.asarray(peg_pos, np.float64) - np.asarray(hole_pos, np.float64)
        c, s = np.cos(hole_yaw), np.sin(hole_yaw)
        return np.array(
            [c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2] - PEG_HALF_LENGTH], np.float32
        )

    def _errors(self, model: mujoco.MjModel, data: mujoco.MjData) -> tuple[float, float]:
        """(lateral distance peg axis to hole axis, depth of the peg bottom below the rim)."""
        peg_pos = free_body_pose(model, data, "peg")[0]
        hole_pos = self.hole_pose(model)[0]
        lateral = float(np.linalg.norm(peg_pos[:2] - hole_pos[:2]))
        depth = float(hole_pos[2] - (peg_pos[2] - PEG_HALF_LENGTH))
        return lateral, depth

    def shaped_reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Reach, then align (coarse, then to the millimetre and in yaw), then go down; [0, 1].

        The fine term matters: with 1 mm clearance per side, a peg 5 mm off axis is as stuck as
        one 5 cm off, and a coarse term alone barely tells them apart.
        """
        peg_pos = free_body_pose(model, data, "peg")[0]
        tcp = data.site_xpos[model.site("tcp").id]
        reach = 1.0 - np.tanh(8.0 * float(np.linalg.norm(tcp - peg_pos)))
        lateral, depth = self._errors(model, data)
        coarse = 1.0 - np.tanh(10.0 * lateral)
        square = 1.0 - min(abs(self.yaw_error(model, data)) / (np.pi / 4), 1.0)
        fine = (1.0 - np.tanh(lateral / (2 * CLEARANCE))) * square
        down = float(np.clip(depth / INSERT_DEPTH, 0.0, 1.0)) if lateral < HOLE_HALF else 0.0
        return float(0.2 * reach + 0.2 * coarse + 0.2 * fine + 0.4 * down)

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        lateral, depth = self._errors(model, data)
        return lateral < HOLE_HALF and depth >= INSERT_DEPTH

    def yaw_error(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Peg-to-hole yaw error modulo the square's 90 degree symmetry."""
        peg_yaw = quat_yaw(free_body_pose(model, data, "peg")[1])
        hole_yaw = quat_yaw(self.hole_pose(model)[1])
        d = wrap_angle(4 * (peg_yaw - hole_yaw)) / 4
        return float(d)

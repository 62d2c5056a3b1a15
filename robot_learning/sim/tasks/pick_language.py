"""Pick-language: four coloured cubes; the instruction names the one to pick up.

All four cubes are always present and reported in a fixed colour order, so a policy can only
succeed by reading the instruction. Instructions come from templates; ``phrasing="heldout"``
draws from wordings never used with ``phrasing="train"``, to measure generalisation.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from robot_learning.sim.kinematics import yaw_quat
from robot_learning.sim.tasks.base import Task, add_free_box, free_body_pose, set_free_body_pose
from robot_learning.sim.tasks.lift import CUBE_HALF, LIFT_HEIGHT, lift_reward
from robot_learning.specs import FeatureSpec

COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.1, 0.25, 0.9, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        "pick up the {color} cube",
        "lift the {color} block",
        "grab the {color} cube and raise it",
        "pick the {color} one",
    ),
    "heldout": (
        "could you hoist the {color} cube",
        "take the {color} block off the table",
        "raise the {color} box up high",
    ),
}
MIN_SEPARATION = 0.09


class PickLanguageTask(Task):
    name = "pick_language"
    description = "pick up the cube the instruction names"
    max_episode_steps = 150
    object_bodies = tuple(f"cube_{c}" for c in COLORS)
    colored_geoms = tuple(f"cube_{c}" for c in COLORS)

    def __init__(self, phrasing: str = "train") -> None:
        if phrasing not in TEMPLATES:
            raise ValueError(f"unknown phrasing {phrasing!r}; valid: {', '.join(TEMPLATES)}")
        self.phrasing = phrasing
        self.target_color = "red"
        self._instruction = TEMPLATES[phrasing][0].format(color="red")

    def build(self, spec: mujoco.MjSpec) -> None:
        for color, rgba in COLORS.items():
            add_free_box(spec, f"cube_{color}", (CUBE_HALF,) * 3, rgba, mass=0.08)

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        placed: list[np.ndarray] = []
        while len(placed) < len(COLORS):
            xy = np.array([rng.uniform(0.38, 0.64), rng.uniform(-0.2, 0.2)])
            if all(np.linalg.norm(xy - p) >= MIN_SEPARATION for p in placed):
                placed.append(xy)
        for color, xy in zip(COLORS, placed):
            set_free_body_pose(
                model,
                data,
                f"cube_{color}_joint",
                np.array([*xy, CUBE_HALF]),
                yaw_quat(rng.uniform(-np.pi, np.pi)),
            )
        colors = list(COLORS)
        self.target_color = colors[int(rng.integers(len(colors)))]
        templates = TEMPLATES[self.phrasing]
        template = templates[int(rng.integers(len(templates)))]
        self._instruction = template.format(color=self.target_color)

    def instruction(self) -> str:
        return self._instruction

    def observation_features(self) -> dict[str, FeatureSpec]:
        n = len(COLORS)
        return {
            "cubes_pos": FeatureSpec(
                (n, 3),
                "float32",
                "lowdim",
                description=f"cube centres in colour order {list(COLORS)}",
            ),
            "cubes_quat": FeatureSpec((n, 4), "float32", "lowdim", description="cube wxyz"),
            "instruction": FeatureSpec((), "str", "language"),
        }

    def observe(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        poses = [free_body_pose(model, data, f"cube_{c}") for c in COLORS]
        return {
            "cubes_pos": np.stack([p for p, _ in poses]).astype(np.float32),
            "cubes_quat": np.stack([q for _, q in poses]).astype(np.float32),
            "instruction": self._instruction,
        }

    def privileged_state(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, Any]:
        pos, quat = free_body_pose(model, data, f"cube_{self.target_color}")
        return {"object_pos": pos, "object_quat": quat, "target_color": self.target_color}

    def shaped_reward(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        reward = lift_reward(model, data, f"cube_{self.target_color}")
        wrong = sum(
            free_body_pose(model, data, f"cube_{c}")[0][2] > CUBE_HALF + 0.02
            for c in COLORS
            if c != self.target_color
        )
        return float(reward - 0.5 * wrong)

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        heights = {c: free_body_pose(model, data, f"cube_{c}")[0][2] for c in COLORS}
        lifted = heights[self.target_color] >= CUBE_HALF + LIFT_HEIGHT
        others_down = all(
            h < CUBE_HALF + 0.02 for c, h in heights.items() if c != self.target_color
        )
        return bool(lifted and others_down)

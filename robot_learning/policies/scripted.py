"""A scripted lift controller behind the :class:`Policy` interface: no training, no weights.

Why: the serving stack, the ROS 2 closed loop and the safety tests need a policy that succeeds
reliably without a 15-minute training run, acts only on what a robot observes (tcp pose,
gripper, object pose), and is served like any checkpoint (``robot-learning serve``/``eval``).
Unlike the scripted experts in ``sim/experts`` (which read the simulator's commanded pose), it
is stateless: its phase follows from the observation alone, so a server can answer any robot
at any time. It is a test fixture and a baseline, not a learned policy.

Phases: align over the cube (yaw to the nearest face) at a hover height; descend; close when
the pads are at the cube; lift once the gripper has closed. With ``task="pick_language"`` it
reads the instruction (kind ``language``) and lifts the cube whose colour it names: a policy
that can only succeed if the instruction reaches it, for testing the language path end to end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.policies.base import Policy
from robot_learning.sim.control import MAX_POS_STEP, MAX_ROT_STEP
from robot_learning.sim.experts.base import nearest_grasp_yaw, top_down_quat
from robot_learning.sim.kinematics import quat_error, quat_yaw
from robot_learning.sim.tasks.pick_language import COLORS
from robot_learning.specs import FeatureSpec, SpecDict

HOVER = 0.06
GRASP_ABOVE_CENTRE = 0.004
LIFT_TO = 0.22
GAIN = 0.5
ROT_GAIN = 0.5
HELD = (0.4, 0.9)  # gripper closure while holding the 5 cm cube; above: closed on nothing
PROPRIO_KEYS = ("ee_pos", "ee_quat", "gripper_pos")
POLICY_NAME = "scripted_lift"
TASKS = ("lift", "pick_language")


def _spec(shape: tuple[int, ...], description: str) -> FeatureSpec:
    return FeatureSpec(shape, "float32", "lowdim", description=description)


def lift_specs(
    cameras: tuple[str, ...] = (), image_size: tuple[int, int] = (96, 96), task: str = "lift"
) -> tuple[SpecDict, SpecDict]:
    """The policy's specs; ``cameras`` adds RGB features it requires but does not look at."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} for the scripted lift; valid: {', '.join(TASKS)}")
    features = {
        "ee_pos": _spec((3,), "tcp position, m"),
        "ee_quat": _spec((4,), "tcp orientation wxyz"),
        "gripper_pos": _spec((1,), "gripper closure 0..1"),
    }
    if task == "lift":
        features["object_pos"] = _spec((3,), "cube centre, m")
        features["object_quat"] = _spec((4,), "cube orientation wxyz")
    else:
        n = len(COLORS)
        features["cubes_pos"] = _spec((n, 3), f"cube centres in colour order {list(COLORS)}")
        features["cubes_quat"] = _spec((n, 4), "cube wxyz")
        features["instruction"] = FeatureSpec((), "str", "language")
    for cam in cameras:
        features[f"{cam}_rgb"] = FeatureSpec((*image_size, 3), "uint8", "rgb")
    obs = SpecDict(features)
    action = SpecDict(
        {
            "action": FeatureSpec(
                (7,),
                "float32",
                "lowdim",
                low=(-MAX_POS_STEP,) * 3 + (-MAX_ROT_STEP,) * 3 + (0.0,),
                high=(MAX_POS_STEP,) * 3 + (MAX_ROT_STEP,) * 3 + (1.0,),
                names=("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
                description="tcp delta (m, axis-angle rad, world frame) and gripper closure 0..1",
            )
        }
    )
    return obs, action


class ScriptedLiftPolicy(Policy):
    """Observation-only lift controller; chunks integrate the tcp delta over ``chunk_len`` steps."""

    def __init__(
        self,
        control_hz: float = 10.0,
        chunk_len: int = 4,
        cameras: tuple[str, ...] = (),
        image_size: tuple[int, int] = (96, 96),
        task: str = "lift",
    ) -> None:
        # camera features are required (a robot must stream them, and a stale one holds the arm
        # in the safety layer) but not used: this is how the stack's camera paths get tested
        self.cameras, self.image_size = tuple(cameras), (int(image_size[0]), int(image_size[1]))
        self.task = task
        self.observation_spec, self.action_spec = lift_specs(self.cameras, self.image_size, task)
        self.control_hz = float(control_hz)
        self.n_obs_steps = 1
        self.chunk_len = int(chunk_len)
        self.n_action_steps = int(chunk_len)
        self.max_step = min(0.4 / self.control_hz, 0.8 * MAX_POS_STEP)  # 0.4 m/s

    def _one(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        ee = np.asarray(obs["ee_pos"], np.float64)
        ee_quat = np.asarray(obs["ee_quat"], np.float64)
        grip = float(np.asarray(obs["gripper_pos"]).reshape(-1)[0])
        cube = np.asarray(obs["object_pos"], np.float64)
        yaw = nearest_grasp_yaw(
            quat_yaw(np.asarray(obs["object_quat"], np.float64)), quat_yaw(ee_quat)
        )
        grasp = cube + np.array([0.0, 0.0, GRASP_ABOVE_CENTRE])
        xy_err = float(np.linalg.norm((grasp - ee)[:2]))
        if grip > HELD[1]:  # closed on nothing: open and try again from above
            target, close = np.array([ee[0], ee[1], cube[2] + HOVER]), 0.0
        elif grip > HELD[0]:  # holding: lift straight up
            target, close = np.array([ee[0], ee[1], LIFT_TO]), 1.0
        elif grip > 0.05 or float(np.linalg.norm(grasp - ee)) < 0.008:  # at the cube: close
            target, close = ee, 1.0
        elif xy_err > 0.01:  # align above the cube first
            target, close = cube + np.array([0.0, 0.0, HOVER]), 0.0
        else:
            target, close = grasp, 0.0
        chunk = np.zeros((self.chunk_len, 7), np.float32)
        pos = ee.copy()
        rot_err = quat_error(top_down_quat(yaw), ee_quat)
        for i in range(self.chunk_len):
            delta = (target - pos) * GAIN
            norm = float(np.linalg.norm(delta))
            if norm > self.max_step:
                delta *= self.max_step / norm
            pos = pos + delta
            turn = np.clip(rot_err * ROT_GAIN, -MAX_ROT_STEP, MAX_ROT_STEP)
            rot_err = rot_err - turn
            chunk[i] = np.concatenate([delta, turn, [close]])
        return chunk

    def _row(self, obs: Mapping[str, Any], b: int) -> dict[str, np.ndarray]:
        """Row ``b``'s newest proprioception and the pose of the cube to lift."""
        row = {k: np.asarray(obs[k])[b, -1] for k in PROPRIO_KEYS}
        if self.task == "lift":
            row["object_pos"] = np.asarray(obs["object_pos"])[b, -1]
            row["object_quat"] = np.asarray(obs["object_quat"])[b, -1]
            return row
        target = named_color(str(obs["instruction"][b]))
        row["object_pos"] = np.asarray(obs["cubes_pos"])[b, -1, target]
        row["object_quat"] = np.asarray(obs["cubes_quat"])[b, -1, target]
        return row

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        batch = self.check_batch(obs)
        out = np.stack([self._one(self._row(obs, b)) for b in range(batch)])
        return out.astype(np.float32)

    def save(self, directory: str | Path) -> Path:
        """Write a checkpoint directory that ``load_policy`` / ``robot-learning serve`` read."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        config = {
            "format": 1,
            "policy": POLICY_NAME,
            "config": {
                "chunk_len": self.chunk_len,
                "cameras": list(self.cameras),
                "image_size": list(self.image_size),
                "task": self.task,
            },
            "observation_spec": self.observation_spec.to_json(),
            "action_spec": self.action_spec.to_json(),
            "control_hz": self.control_hz,
        }
        (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        from safetensors.numpy import save_file

        for name in ("model.safetensors", "normalizer.safetensors"):  # no weights, no statistics
            save_file({}, str(path / name), metadata={"policy": POLICY_NAME})
        return path


def load_scripted_lift(
    path: str | Path, device: str = "cpu", **overrides: Any
) -> ScriptedLiftPolicy:
    config = json.loads((Path(path) / "config.json").read_text())
    inner = config.get("config", {})
    return ScriptedLiftPolicy(
        control_hz=float(config.get("control_hz", 10.0)),
        chunk_len=int(inner.get("chunk_len", 4)),
        cameras=tuple(inner.get("cameras", ())),
        image_size=tuple(inner.get("image_size", (96, 96))),
        task=str(inner.get("task", "lift")),
    )


def named_color(instruction: str) -> int:
    """Index (in ``COLORS`` order) of the one colour the instruction names."""
    words = instruction.lower().replace(",", " ").split()
    named = [i for i, color in enumerate(COLORS) if color in words]
    if len(named) != 1:
        raise ValueError(
            f"instruction {instruction!r} must name exactly one colour of {', '.join(COLORS)}"
        )
    return named[0]

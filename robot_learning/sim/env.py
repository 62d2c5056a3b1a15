"""``ManipulationEnv``: the simulated UR5e cell as a Gymnasium environment.

One env class serves every task; the task decides objects, reward and success. Observations are
a dict of features described by :meth:`ManipulationEnv.observation_spec` (the same spec object
that datasets and policies consume); actions are a single ``action`` feature whose meaning
depends on the control mode. Bad actions (wrong shape, NaN/Inf) raise ``ValueError``; actions out
of bounds are clipped and the executed action is reported in ``info``.
"""

from __future__ import annotations

import collections
import string
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robot_learning.sim.control import (
    MAX_TRACKING_ERROR,
    ArmController,
    ControlMode,
    action_spec,
)
from robot_learning.sim.randomization import DRSample, ModelDefaults, Variant, check_variant
from robot_learning.sim.rendering import CameraRenderer
from robot_learning.sim.rewards import REWARDS
from robot_learning.sim.robot_model import (
    GRIPPER_JOINT,
    GRIPPER_JOINT_MAX,
    HOME_QPOS,
    TCP_SITE,
    build_robot_spec,
)
from robot_learning.sim.tactile import TactileGrid
from robot_learning.sim.tasks import make_task
from robot_learning.sim.tasks.base import Task
from robot_learning.specs import FeatureSpec, SpecDict

CAMERA_NAMES: tuple[str, ...] = ("scene", "wrist")
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " .,;:'!?-"
PHYSICS_TIMESTEP = 0.002
UNSTABLE_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQACC,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQPOS,
)


@dataclass(frozen=True)
class EnvConfig:
    """Everything that shapes an episode; defaults give a fast state-only env."""

    task: str = "lift"
    control_mode: ControlMode = "ee_delta"
    control_hz: float = 20.0
    cameras: tuple[str, ...] = ()
    image_size: tuple[int, int] = (96, 96)  # (height, width)
    depth: bool = False
    tactile: bool = True
    tactile_grid: tuple[int, int] = (8, 6)
    variant: Variant = "default"
    reward: str = "shaped"  # one of REWARDS (see robot_learning.sim.rewards)
    max_episode_steps: int | None = None
    terminate_on_success: bool = True
    task_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_variant(self.variant)
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown:
            raise ValueError(f"unknown cameras {unknown}; valid cameras: {', '.join(CAMERA_NAMES)}")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; valid rewards: {', '.join(REWARDS)}")
        substeps = 1.0 / (self.control_hz * PHYSICS_TIMESTEP)
        if self.control_hz <= 0 or substeps < 1:
            raise ValueError(
                f"control_hz must be in (0, {1 / PHYSICS_TIMESTEP:.0f}], got {self.control_hz}"
            )
        if self.depth and not self.cameras:
            raise ValueError("depth=True needs at least one camera")


class ManipulationEnv(gym.Env[dict[str, Any], np.ndarray]):
    """UR5e + 2F-85 manipulation with joint-position or tcp-delta control."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self, config: EnvConfig | None = None, render_mode: str | None = None, **overrides: Any
    ) -> None:
        config = replace(config or EnvConfig(), **overrides)
        config.validate()
        self.config = config
        self.render_mode = render_mode
        self.task: Task = make_task(config.task, **config.task_kwargs)
        spec = build_robot_spec()
        self.task.build(spec)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.task.bind(self.model)
        self.defaults = ModelDefaults(self.model)
        self.substeps = round(1.0 / (config.control_hz * self.model.opt.timestep))
        self.control_dt = self.substeps * self.model.opt.timestep
        self.metadata = {**self.metadata, "render_fps": round(config.control_hz)}
        # task budgets are in steps at 20 Hz; keep the same wall-clock budget at other rates
        default_steps = round(self.task.max_episode_steps * config.control_hz / 20.0)
        self.max_episode_steps = config.max_episode_steps or default_steps
        self.controller = ArmController(self.model, config.control_mode)
        self.tcp_id = self.model.site(TCP_SITE).id
        self.gripper_qpos = self.model.jnt_qposadr[self.model.joint(GRIPPER_JOINT).id]
        self.tactile = TactileGrid(self.model, *config.tactile_grid) if config.tactile else None
        self.renderer = CameraRenderer(self.model, config.image_size, depth=config.depth)
        self._action_spec = action_spec(config.control_mode, self.controller.limits)
        self._action_low, self._action_high = (
            b.astype(np.float32) for b in self._action_spec.bounds()
        )
        self._obs_spec = self._build_observation_spec()
        self.action_space = gym.spaces.Box(self._action_low, self._action_high, dtype=np.float32)
        # action noise is drawn as a fraction of one control step's reach: half the tcp-delta
        # range, or for joint targets the tracking error the controller allows (half a joint's
        # whole range would throw a held arm about by 0.3 rad per step)
        half = (self._action_high - self._action_low) / 2
        if config.control_mode == "joint":
            half = np.concatenate([np.full(6, MAX_TRACKING_ERROR, np.float32), half[6:]])
        self._noise_scale = half.astype(np.float32)
        self.observation_space = self._build_observation_space()
        self.dr = DRSample()
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self.steps = 0
        self._potential = 0.0  # the shaping value of the current state (reward "progress")
        self._noise_rng = np.random.default_rng(0)

    # ---- specs ---------------------------------------------------------------------------------
    def observation_spec(self) -> SpecDict:
        return self._obs_spec

    def action_spec(self) -> SpecDict:
        return SpecDict({"action": self._action_spec})

    def _build_observation_spec(self) -> SpecDict:
        f: dict[str, FeatureSpec] = {
            "joint_pos": FeatureSpec((6,), "float32", "lowdim", description="arm joints, rad"),
            "joint_vel": FeatureSpec((6,), "float32", "lowdim", description="arm joints, rad/s"),
            "gripper_pos": FeatureSpec(
                (1,),
                "float32",
                "lowdim",
                low=0.0,
                high=1.0,
                description="gripper closure, 0 open .. 1 closed",
            ),
            "ee_pos": FeatureSpec((3,), "float32", "lowdim", description="tcp position, m"),
            "ee_quat": FeatureSpec((4,), "float32", "lowdim", description="tcp orientation wxyz"),
        }
        f.update(self.task.observation_features())
        h, w = self.config.image_size
        for cam in self.config.cameras:
            f[f"{cam}_rgb"] = FeatureSpec((h, w, 3), "uint8", "rgb")
            if self.config.depth:
                f[f"{cam}_depth"] = FeatureSpec((h, w), "uint16", "depth", description="mm")
        if self.tactile is not None:
            rows, cols = self.config.tactile_grid
            for side in ("left", "right"):
                f[f"tactile_{side}"] = FeatureSpec(
                    (rows, cols, 3),
                    "float32",
                    "tactile",
                    description="per-taxel force [normal, shear_x, shear_z], N",
                )
        return SpecDict(f)

    def _build_observation_space(self) -> gym.spaces.Dict:
        spaces: dict[str, gym.Space[Any]] = {}
        for name, spec in self._obs_spec.items():
            if spec.kind == "language":
                spaces[name] = gym.spaces.Text(max_length=256, charset=INSTRUCTION_CHARSET)
            elif spec.dtype == "uint8":
                spaces[name] = gym.spaces.Box(0, 255, spec.shape, dtype=np.uint8)
            elif spec.dtype == "uint16":
                spaces[name] = gym.spaces.Box(0, 65535, spec.shape, dtype=np.uint16)
            else:
                low, high = spec.bounds()
                spaces[name] = gym.spaces.Box(
                    low.astype(np.float32), high.astype(np.float32), dtype=np.float32
                )
        return gym.spaces.Dict(spaces)

    # ---- gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._noise_rng = np.random.default_rng(self.np_random.integers(2**63))
        self.dr = self.task.domain_randomize(
            self.model, self.defaults, self.np_random, self.config.variant
        )
        if self.config.variant != "default":
            mujoco.mj_setConst(self.model, self.data)  # masses changed: refresh derived constants
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self.controller.qpos_ids] = HOME_QPOS
        self.task.reset(self.model, self.data, self.np_random)
        mujoco.mj_forward(self.model, self.data)
        self.controller.reset(self.data)
        self.data.ctrl[self.controller.gripper_actuator] = 0.0
        self._pending.clear()
        self.steps = 0
        # settle objects onto the table before the first observation
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        obs = self._observe()
        self._potential = self.task.shaped_reward(self.model, self.data)
        return obs, self._info(success=self.task.success(self.model, self.data))

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        executed = self.validate_action(action)
        applied = executed
        if self.dr.action_noise_std > 0:
            applied = np.clip(
                executed
                + self._noise_rng.normal(0, self.dr.action_noise_std, 7) * self._noise_scale,
                self._action_low,
                self._action_high,
            ).astype(np.float32)
        if self.dr.latency_steps > 0:
            self._pending.append(applied)
            applied = (
                self._pending.popleft()
                if len(self._pending) > self.dr.latency_steps
                else self._hold_action()
            )
        self.controller.apply(self.data, applied)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        self._check_stable()
        self.steps += 1
        success = self.task.success(self.model, self.data)
        if self.config.reward == "sparse":
            reward = float(success)
        elif self.config.reward == "progress":
            potential = self.task.shaped_reward(self.model, self.data)
            reward = float(success) + potential - self._potential
            self._potential = potential
        else:
            reward = float(success) + self.task.shaped_reward(self.model, self.data)
        terminated = success and self.config.terminate_on_success
        truncated = self.steps >= self.max_episode_steps
        info = self._info(success=success)
        info["executed_action"] = executed
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        camera = self.config.cameras[0] if self.config.cameras else "scene"
        return self.renderer.rgb(self.data, camera)

    def close(self) -> None:
        self.renderer.close()

    # ---- helpers -------------------------------------------------------------------------------
    def validate_action(self, action: Any) -> np.ndarray:
        """Check shape and finiteness; clip to bounds. Returns the action that will execute."""
        try:
            arr = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"action must be a numeric array of shape (7,): {exc}") from None
        if arr.shape != (7,):
            names = ", ".join(self._action_spec.names or ())
            raise ValueError(
                f"action has shape {arr.shape}, expected (7,) for control mode "
                f"{self.config.control_mode!r}: [{names}]"
            )
        if not np.all(np.isfinite(arr)):
            bad = [n for n, v in zip(self._action_spec.names or (), arr) if not np.isfinite(v)]
            raise ValueError(f"action contains NaN or Inf in {bad}; the action was not executed")
        return np.clip(arr, self._action_low, self._action_high).astype(np.float32)

    def _check_stable(self) -> None:
        """MuJoCo silently resets a diverged state; surface it instead of training on it."""
        for warning in UNSTABLE_WARNINGS:
            if self.data.warning[warning].number > 0:
                raise RuntimeError(
                    f"simulation became unstable ({warning.name}) at t={self.data.time:.3f} s "
                    f"in task {self.config.task!r}; this is a bug, please report it"
                )

    def _hold_action(self) -> np.ndarray:
        """The action that keeps the arm where it is commanded (used while latency fills up)."""
        grip = self.data.ctrl[self.controller.gripper_actuator] / 255.0
        if self.config.control_mode == "ee_delta":
            return np.array([0, 0, 0, 0, 0, 0, grip], dtype=np.float32)
        return np.array([*self.controller.q_cmd, grip], dtype=np.float32)

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.tcp_id])
        return self.data.site_xpos[self.tcp_id].copy(), quat

    def gripper_closure(self) -> float:
        return float(np.clip(self.data.qpos[self.gripper_qpos] / GRIPPER_JOINT_MAX, 0.0, 1.0))

    def _observe(self) -> dict[str, Any]:
        d = self.data
        ids = self.controller.qpos_ids
        pos, quat = self.tcp_pose()
        obs: dict[str, Any] = {
            "joint_pos": d.qpos[ids].astype(np.float32),
            "joint_vel": d.qvel[self.controller.ik.dof_ids].astype(np.float32),
            "gripper_pos": np.array([self.gripper_closure()], dtype=np.float32),
            "ee_pos": pos.astype(np.float32),
            "ee_quat": quat.astype(np.float32),
        }
        obs.update(self.task.observe(self.model, d))
        if self.dr.obs_noise_std > 0:
            for name, spec in self._obs_spec.items():
                if spec.kind == "lowdim" and name != "gripper_pos":
                    obs[name] = (
                        obs[name] + self._noise_rng.normal(0, self.dr.obs_noise_std, spec.shape)
                    ).astype(np.float32)
        for cam in self.config.cameras:
            obs[f"{cam}_rgb"] = self.renderer.rgb(d, cam)
            if self.config.depth:
                obs[f"{cam}_depth"] = self.renderer.depth_mm(d, cam)
        if self.tactile is not None:
            for side, grid in self.tactile.compute(self.model, d).items():
                obs[f"tactile_{side}"] = grid
        return obs

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "is_success": success,
            "sim_time": float(self.data.time),
            "instruction": self.task.instruction(),
            "domain_randomization": dict(self.dr.values),
        }

    def privileged_state(self) -> dict[str, Any]:
        """Ground truth for scripted experts: task state plus tcp pose and gripper closure."""
        state = dict(self.task.privileged_state(self.model, self.data))
        state["tcp_pos"], state["tcp_quat"] = self.tcp_pose()
        state["tcp_target_pos"] = self.controller.target_pos.copy()
        state["tcp_target_quat"] = self.controller.target_quat.copy()
        state["gripper"] = self.gripper_closure()
        return state

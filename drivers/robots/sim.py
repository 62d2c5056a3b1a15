"""``SimRobot``: the MuJoCo ``ManipulationEnv`` behind the hardware :class:`Robot` interface.

Why: collection, evaluation and the ROS 2 nodes drive a robot through ``connect`` /
``get_observation`` / ``send_action``; wrapping the sim env in the same interface means the sim
and the real arm share one code path, and the sim is the default robot on a laptop.

Time is sim time (``env.data.time``, seconds): every observation feature is stamped with the sim
time it was sensed at, and an executed action carries the sim time it started executing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from drivers.interfaces import Robot
from robot_learning.sim.env import EnvConfig, ManipulationEnv
from robot_learning.sim.tasks import TASKS
from robot_learning.specs import SpecDict
from robot_learning.types import Action, Observation

LOG = logging.getLogger(__name__)


class SimRobot(Robot):
    """A simulated UR5e + 2F-85 cell running one task; ``connect()`` builds and resets the env.

    ``env_overrides`` are :class:`~robot_learning.sim.env.EnvConfig` fields (``cameras``,
    ``variant``, ``control_mode``, ...). They are validated here, so a bad variant or camera fails
    at construction rather than at connect time.
    """

    def __init__(
        self,
        task: str = "lift",
        config: EnvConfig | None = None,
        seed: int | None = None,
        render_mode: str | None = None,
        **env_overrides: Any,
    ) -> None:
        super().__init__()
        TASKS.get(task)  # unknown names list the valid ones; unimplemented tasks fail to import
        self.config = replace(config or EnvConfig(), task=task, **env_overrides)
        self.config.validate()
        self.task = task
        self.seed = seed
        self.render_mode = render_mode
        self._env: ManipulationEnv | None = None
        self._obs: dict[str, Any] = {}
        self._obs_time = 0.0
        self.last_info: dict[str, Any] = {}
        self._clear_step_state()

    @property
    def device_name(self) -> str:
        return f"SimRobot(sim:{self.task})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        self._env = ManipulationEnv(self.config, render_mode=self.render_mode)
        try:
            self._reset_env(self.seed)
        except Exception:
            self._env.close()
            self._env = None
            raise

    def _disconnect(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env = None
        self._obs = {}

    @property
    def env(self) -> ManipulationEnv:
        """The wrapped env, for sim-only consumers (scripted experts, video rendering)."""
        self.require_connected("env")
        assert self._env is not None
        return self._env

    # ---- specs ---------------------------------------------------------------------------------
    def observation_spec(self) -> SpecDict:
        return self.env.observation_spec()

    def action_spec(self) -> SpecDict:
        return self.env.action_spec()

    # ---- episodes ------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> Observation:
        """Re-sample the scene (``seed`` makes it reproducible) and return the first observation."""
        self.require_connected("reset")
        self._reset_env(seed)
        return self.get_observation()

    def _reset_env(self, seed: int | None) -> None:
        assert self._env is not None
        obs, info = self._env.reset(seed=seed)
        self._store_obs(obs)
        self._clear_step_state()
        self.last_info = info
        self.is_success = bool(info["is_success"])

    def _clear_step_state(self) -> None:
        self.last_reward = 0.0
        self.terminated = False
        self.truncated = False
        self.is_success = False
        self.last_info = {}
        self.episode_steps = 0

    @property
    def done(self) -> bool:
        """True once the episode terminated (success) or hit its step limit; call ``reset``."""
        return self.terminated or self.truncated

    @property
    def sim_time(self) -> float:
        return float(self.env.data.time)

    @property
    def instruction(self) -> str:
        """The current episode's language instruction (the task description for most tasks)."""
        return str(self.last_info.get("instruction", ""))

    # ---- I/O -----------------------------------------------------------------------------------
    def _store_obs(self, obs: dict[str, Any]) -> None:
        assert self._env is not None
        self._obs = obs
        self._obs_time = float(self._env.data.time)

    def get_observation(self) -> Observation:
        """The observation sensed after the last reset/step, each feature stamped with sim time."""
        self.require_connected("get_observation")
        values = dict(self._obs)
        return Observation(values=values, timestamps={k: self._obs_time for k in values})

    def send_action(self, action: Action) -> Action:
        """Validate, step the sim one control period, return the executed (clipped) action.

        The returned ``t_exec`` is the sim time the action started executing; ``info`` carries
        ``reward``, ``is_success``, ``terminated``, ``truncated`` and ``clipped``.
        """
        self.require_connected("send_action")
        spec = self.action_spec()
        spec.validate(action.values, what="action")
        requested = np.asarray(action.values["action"], dtype=np.float32)
        if self.done:
            LOG.debug("%s: stepping after the episode ended; call reset()", self.device_name)
        t_exec = self.sim_time
        obs, reward, terminated, truncated, info = self.env.step(requested)
        self._store_obs(obs)
        executed = np.asarray(info["executed_action"], dtype=np.float32)
        self.last_reward = float(reward)
        self.terminated, self.truncated = bool(terminated), bool(truncated)
        self.is_success = bool(info["is_success"])
        self.last_info = info
        self.episode_steps += 1
        return Action(
            values={"action": executed},
            t_exec=t_exec,
            info={
                "reward": self.last_reward,
                "is_success": self.is_success,
                "terminated": self.terminated,
                "truncated": self.truncated,
                "clipped": bool(np.any(executed != requested)),
            },
        )

    def render(self, camera: str = "scene") -> np.ndarray:
        """An RGB frame of ``camera`` at the configured image size (for videos; not an obs)."""
        return self.env.renderer.rgb(self.env.data, camera)

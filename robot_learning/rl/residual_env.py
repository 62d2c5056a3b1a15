"""Vectorized sim envs seen through a residual policy: the base acts, the agent corrects.

Each step the base is asked for a chunk on every env's observation window (one batched call),
the agent's residual in [-1, 1] is combined with the base's first action and the envs step.
This is :meth:`ResidualPolicy.predict_chunk` unrolled, so training and serving act the same.
Episodes reset automatically (Gymnasium ``SAME_STEP``); for an episode cut off by the time
limit the features of its last observation are returned, so value targets can bootstrap from it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from robot_learning.eval.env_config import env_config_for
from robot_learning.rl.residual_policy import ResidualPolicy
from robot_learning.sim.vector import make_vector_env


@dataclass
class StepResult:
    """One vector step: rewards and flags per env, and the features the agent sees next."""

    raw_features: np.ndarray  # [N, F] of the next observation (a new episode's where one ended)
    reward: np.ndarray  # [N]
    terminated: np.ndarray  # [N] bool: success (sparse task reward ends the episode)
    truncated: np.ndarray  # [N] bool: the time limit
    final_raw_features: np.ndarray  # [N, F]: features of the last observation where truncated
    success: np.ndarray  # [N] bool, for finished episodes


class ResidualEnv(Protocol):
    """What the learners step: ``num_envs`` envs taking residuals in [-1, 1]."""

    num_envs: int

    def reset(self, seed: int | None = None) -> np.ndarray: ...

    def step(self, residual_unit: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


class ResidualVecEnv:
    """``num_envs`` copies of ``task`` driven by ``policy.base`` plus an external residual."""

    def __init__(
        self,
        policy: ResidualPolicy,
        task: str,
        num_envs: int,
        *,
        variant: str = "train",
        reward: str = "sparse",
        seed: int = 0,
        asynchronous: bool = True,
        max_steps: int | None = None,
    ) -> None:
        self.policy = policy
        config = replace(
            env_config_for(policy.base, task, variant=variant, max_steps=max_steps), reward=reward
        )
        envs = make_vector_env(
            num_envs,
            config,
            asynchronous=asynchronous and num_envs > 1,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        if not isinstance(envs, (gym.vector.AsyncVectorEnv, gym.vector.SyncVectorEnv)):
            raise TypeError(f"make_vector_env returned {type(envs).__name__}")
        self.envs = envs
        self.num_envs = num_envs
        obs_spec = self.envs.call("observation_spec")[0]
        act_spec = self.envs.call("action_spec")[0]
        policy.check_compatible(obs_spec, act_spec)
        self.windows: list[deque[dict[str, Any]]] = [
            deque(maxlen=policy.n_obs_steps) for _ in range(num_envs)
        ]
        self.seed = seed
        self.base_action = np.zeros((num_envs, policy.action_dim), np.float32)

    # ---- observation windows -------------------------------------------------------------------
    def _pick(self, obs: Any, i: int | None) -> dict[str, Any]:
        """Env ``i``'s features from a batched observation (``i=None``: a single env's)."""
        return {
            name: np.array(obs[name] if i is None else obs[name][i], dtype=spec.dtype)
            for name, spec in self.policy.observation_spec.items()
        }

    def _start_window(self, i: int, first: dict[str, Any]) -> None:
        self.windows[i].clear()
        for _ in range(self.policy.n_obs_steps):  # padded with the first observation
            self.windows[i].append(first)

    def _batch(self, windows: list[deque[dict[str, Any]]]) -> dict[str, np.ndarray]:
        return {
            name: np.stack([np.stack([o[name] for o in w]) for w in windows])
            for name in self.policy.observation_spec
        }

    def _observe(self) -> np.ndarray:
        """Ask the base for every env's chunk; remember its first action; return raw features."""
        batch = self._batch(self.windows)
        chunk = self.policy.base_chunk(batch)
        self.base_action = chunk[:, 0].copy()
        return self.policy.raw_features(batch, chunk)

    # ---- API -----------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        obs, _ = self.envs.reset(seed=self.seed if seed is None else seed)
        for i in range(self.num_envs):
            self._start_window(i, self._pick(obs, i))
        self.policy.base.reset()
        return self._observe()

    def step(self, residual_unit: np.ndarray) -> StepResult:
        actions = self.policy.combine(self.base_action, residual_unit)
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        terminated = np.asarray(terminated, bool)
        truncated = np.asarray(truncated, bool) & ~terminated
        done = terminated | truncated
        success = np.zeros(self.num_envs, bool)
        final_raw = np.zeros((self.num_envs, self.policy.feature_dim), np.float32)
        if done.any():
            final_info = info.get("final_info", {})
            flags = final_info.get("is_success")
            if flags is not None:
                success = np.asarray(flags, bool) & done
            final_obs = info["final_obs"]
        cut = np.flatnonzero(truncated)
        if cut.size:
            windows = []
            for i in cut.tolist():
                w = deque(self.windows[i], maxlen=self.policy.n_obs_steps)
                w.append(self._pick(final_obs[i], None))
                windows.append(w)
            batch = self._batch(windows)
            final_raw[cut] = self.policy.raw_features(batch, self.policy.base_chunk(batch))
        for i in range(self.num_envs):
            current = self._pick(obs, i)
            if done[i]:
                self._start_window(i, current)
            else:
                self.windows[i].append(current)
        return StepResult(
            raw_features=self._observe(),
            reward=np.asarray(reward, np.float32),
            terminated=terminated,
            truncated=truncated,
            final_raw_features=final_raw,
            success=success,
        )

    def close(self) -> None:
        self.envs.close()

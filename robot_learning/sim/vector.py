"""Vectorized sim envs on the Gymnasium vector API (one subprocess per env, shared memory obs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gymnasium as gym

from robot_learning.sim.env import EnvConfig, ManipulationEnv
from robot_learning.sim.tasks import make_task


def _factory(config: EnvConfig) -> Callable[[], ManipulationEnv]:
    def make() -> ManipulationEnv:
        return ManipulationEnv(config)

    return make


def make_vector_env(
    num_envs: int,
    config: EnvConfig | None = None,
    asynchronous: bool = True,
    autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.NEXT_STEP,
    **overrides: Any,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of one env config; ``asynchronous`` runs each in its own process.

    Observations travel through shared memory (pipes for language tasks); ``reset(seed=s)``
    gives env ``i`` the seed ``s + i`` (Gymnasium's convention), so runs are reproducible.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    cfg = replace(config or EnvConfig(), **overrides)
    cfg.validate()
    fns = [_factory(cfg) for _ in range(num_envs)]
    if asynchronous:
        # Gymnasium reads Text observations from shared memory only once (a snapshot, not a
        # view), so envs with a language feature send observations through the worker pipes.
        features = make_task(cfg.task, **cfg.task_kwargs).observation_features()
        has_text = any(spec.kind == "language" for spec in features.values())
        return gym.vector.AsyncVectorEnv(
            fns, shared_memory=not has_text, context="spawn", autoreset_mode=autoreset_mode
        )
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=autoreset_mode)

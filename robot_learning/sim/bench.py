"""Simulator throughput: env steps/s (state-only and with one camera) against raw ``mj_step``.

Why: the env's Python overhead (controller, IK, tactile, observation assembly) must stay small
next to the physics itself. Measuring raw ``mujoco.mj_step`` on the *same* compiled model in the
same process gives the ceiling; ``state_fraction_of_raw`` is how much of it the env keeps on equal
physics substeps (env steps/s x substeps / mj_steps/s). Used by ``robot-learning sim bench`` and
``scripts/bench/sim_throughput.py``; the method mirrors ``scripts/bench/robosuite_lift.py`` (random
uniform actions, only time inside ``step`` counted, resets reported separately) so the two stacks
compare like for like. The state-only and raw measurements are interleaved in short slices so
machine load affects both alike.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from robot_learning.sim.env import ManipulationEnv

LOG = logging.getLogger(__name__)
WARMUP_STEPS = 20
MJ_CHUNK = 100
SLICE_S = 0.25  # interleaving slice for the state-only vs raw measurement


@dataclass(frozen=True)
class Throughput:
    """Steps taken, seconds spent inside the stepped call, and wall seconds incl. resets."""

    steps: int = 0
    step_s: float = 0.0
    wall_s: float = 0.0
    resets: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.step_s if self.step_s > 0 else 0.0

    @property
    def steps_per_s_incl_reset(self) -> float:
        return self.steps / self.wall_s if self.wall_s > 0 else 0.0

    def __add__(self, other: Throughput) -> Throughput:
        return Throughput(
            self.steps + other.steps,
            self.step_s + other.step_s,
            self.wall_s + other.wall_s,
            self.resets + other.resets,
        )


class EnvStepper:
    """``env.step`` with random uniform actions; resets whenever an episode ends."""

    def __init__(self, env: ManipulationEnv, seed: int = 0, warmup_s: float = 0.2) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.low, self.high = env.action_spec()["action"].bounds()
        env.reset(seed=seed)
        warmup_end = time.perf_counter() + warmup_s
        for i in range(WARMUP_STEPS):  # first renders, caches; bounded so slow renders stay cheap
            self._step()
            if i >= 1 and time.perf_counter() > warmup_end:
                break

    def _step(self) -> bool:
        action = self.rng.uniform(self.low, self.high).astype(np.float32)
        _, _, terminated, truncated, _ = self.env.step(action)
        if terminated or truncated:
            self.env.reset()
            return True
        return False

    def run(self, seconds: float) -> Throughput:
        steps = resets = 0
        step_s = 0.0
        perf = time.perf_counter
        start = perf()
        while perf() - start < seconds:
            action = self.rng.uniform(self.low, self.high).astype(np.float32)
            t0 = perf()
            _, _, terminated, truncated, _ = self.env.step(action)
            step_s += perf() - t0
            steps += 1
            if terminated or truncated:
                self.env.reset()
                resets += 1
        return Throughput(steps=steps, step_s=step_s, wall_s=perf() - start, resets=resets)


class MjStepper:
    """Bare ``mujoco.mj_step`` on ``env.model``, one physics step per call, on a data copy.

    The data is restored to a post-reset snapshot every episode's worth of physics steps so the
    scene stays comparable to an episode (restore time excluded).
    """

    def __init__(self, env: ManipulationEnv, seed: int = 0) -> None:
        env.reset(seed=seed)
        self.model = env.model
        self.snapshot = copy.copy(env.data)
        self.episode_steps = env.max_episode_steps * env.substeps
        self.data = copy.copy(self.snapshot)
        for _ in range(MJ_CHUNK):
            mujoco.mj_step(self.model, self.data)
        self.data = copy.copy(self.snapshot)
        self.since_restore = 0

    def run(self, seconds: float) -> Throughput:
        model, data, mj_step = self.model, self.data, mujoco.mj_step
        steps = 0
        step_s = 0.0
        perf = time.perf_counter
        start = perf()
        while step_s < seconds:
            t0 = perf()
            for _ in range(MJ_CHUNK):
                mj_step(model, data)
            step_s += perf() - t0
            steps += MJ_CHUNK
            self.since_restore += MJ_CHUNK
            if self.since_restore >= self.episode_steps:
                data = self.data = copy.copy(self.snapshot)
                self.since_restore = 0
        return Throughput(steps=steps, step_s=step_s, wall_s=perf() - start)


def measure_env(env: ManipulationEnv, seconds: float, seed: int = 0) -> Throughput:
    """``env.step`` throughput with random uniform actions for ``seconds`` of wall time."""
    return EnvStepper(env, seed, warmup_s=0.1 * seconds).run(seconds)


def measure_mj_step(env: ManipulationEnv, seconds: float, seed: int = 0) -> Throughput:
    """Raw ``mj_step`` throughput on ``env.model`` for ``seconds`` of stepping time."""
    return MjStepper(env, seed).run(seconds)


def measure_state_and_raw(
    env: ManipulationEnv, seconds: float, seed: int = 0
) -> tuple[Throughput, Throughput]:
    """State-only env and raw ``mj_step``, interleaved in short slices.

    Why interleave: on a shared machine the load changes over seconds; alternating the two
    measurements exposes both to the same load, so their ratio stays meaningful.
    """
    raw_stepper = MjStepper(env, seed)
    env_stepper = EnvStepper(env, seed, warmup_s=0.1 * seconds)
    slices = max(1, round(seconds / SLICE_S))
    state, raw = Throughput(), Throughput()
    for _ in range(slices):
        state = state + env_stepper.run(seconds / slices)
        raw = raw + raw_stepper.run(seconds / slices)
    return state, raw


def bench_task(
    task: str = "lift",
    seconds: float = 2.0,
    camera: str = "scene",
    image_size: tuple[int, int] = (96, 96),
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    **env_overrides: Any,
) -> dict[str, Any]:
    """Measure ``task``: state-only env, env with one ``camera``, raw ``mj_step``; JSON-ready.

    Each measurement runs for ``seconds`` of wall time; ``progress`` receives one line per stage.
    """
    say = progress or (lambda msg: LOG.info("%s", msg))
    say(
        f"{task}: state-only env and raw mujoco.mj_step on its model, interleaved, "
        f"{seconds:g} s each"
    )
    env = ManipulationEnv(task=task, **env_overrides)
    try:
        state, raw = measure_state_and_raw(env, seconds, seed)
        substeps, timestep = env.substeps, float(env.model.opt.timestep)
        control_hz, tactile = env.config.control_hz, env.config.tactile
    finally:
        env.close()
    h, w = image_size
    say(f"{task}: env with one {h}x{w} '{camera}' camera, {seconds:g} s")
    cam_env = ManipulationEnv(task=task, cameras=(camera,), image_size=image_size, **env_overrides)
    try:
        cam = measure_env(cam_env, seconds, seed)
    finally:
        cam_env.close()
    raw_env = raw.steps_per_s / substeps
    return {
        "task": task,
        "mujoco_version": mujoco.__version__,
        "mujoco_gl": os.environ.get("MUJOCO_GL", ""),
        "seconds_per_measurement": seconds,
        "control_hz": control_hz,
        "physics_timestep_s": timestep,
        "substeps": substeps,
        "tactile": tactile,
        "state_steps_per_s": state.steps_per_s,
        "state_steps_per_s_incl_reset": state.steps_per_s_incl_reset,
        "state_steps": state.steps,
        "camera": camera,
        "camera_height_px": h,
        "camera_width_px": w,
        "camera_steps_per_s": cam.steps_per_s,
        "camera_steps_per_s_incl_reset": cam.steps_per_s_incl_reset,
        "camera_steps": cam.steps,
        "mj_steps_per_s": raw.steps_per_s,
        "mj_steps": raw.steps,
        "raw_env_steps_per_s": raw_env,
        "state_fraction_of_raw": state.steps_per_s / raw_env if raw_env > 0 else 0.0,
        "camera_fraction_of_state": (
            cam.steps_per_s / state.steps_per_s if state.steps_per_s > 0 else 0.0
        ),
    }

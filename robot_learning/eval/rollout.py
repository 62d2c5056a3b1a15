"""Evaluate a :class:`Policy` in the MuJoCo sim: exact, seeded episodes on a vector env.

Why this shape:
- The env is configured from the policy's own specs (cameras, image size, depth, tactile,
  control rate), and ``check_compatible`` runs before the first step, so a checkpoint that does
  not fit the task fails with a message naming the feature instead of deep inside the model.
- Episode ``k`` always starts from ``reset(seed=seed + k)``, whatever env slot runs it, so
  results are reproducible and do not depend on ``num_envs``.
- All env slots that need a new chunk in the same step share ONE ``predict_chunk`` call: that is
  how the policy is batched on a server, and the latency we report is per call.
- Gymnasium 1.x vector envs autoreset; in the default ``NEXT_STEP`` mode the step after a done
  returns an (unseeded) reset observation and ignores the action. We let that step pass and then
  reset the slot explicitly with the episode's seed (``reset_mask``). Resetting right after the
  done would be one step cheaper, but ``AsyncVectorEnv`` without shared memory (language tasks)
  does not clear its autoreset flag on an explicit reset and would then reset a second time,
  unseeded.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from robot_learning.eval.env_config import env_config_for
from robot_learning.eval.motion import MotionStats
from robot_learning.eval.result import EpisodeRecord, EvalResult
from robot_learning.eval.stats import latency_summary, wilson_interval
from robot_learning.eval.video import video_writer
from robot_learning.serving.executor import (
    ChunkExecutor,
    ExecutionMode,
    ExecutorConfig,
    stack_prefixes,
)
from robot_learning.serving.safety import ArmState, SafetyConfig, SafetyLayer
from robot_learning.sim.control import ControlMode
from robot_learning.sim.env import CAMERA_NAMES
from robot_learning.sim.vector import make_vector_env
from robot_learning.specs import SpecDict, SpecError

if TYPE_CHECKING:  # importing the policies package pulls in torch; evaluation itself needs none
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)


VectorEnv = gym.vector.AsyncVectorEnv | gym.vector.SyncVectorEnv
ProgressFn = Callable[[EpisodeRecord, int, int], None]  # (episode, finished, total)


@dataclass
class _Pending:
    """A chunk computed from the observation of ``obs_tick``, delivered at ``arrival_tick``."""

    obs_tick: int
    arrival_tick: int
    chunk: np.ndarray


@dataclass
class _Slot:
    """Per-env state: the running episode, its observation window and unexecuted actions."""

    history: deque[dict[str, Any]]
    episode: int | None = None
    seed: int = 0
    steps: int = 0
    success: bool = False
    awaiting_autoreset: bool = False
    executor: ChunkExecutor | None = None
    pending: _Pending | None = None
    last_action: np.ndarray | None = None
    last_chunk: int | None = None
    last_vel: np.ndarray | None = None
    started_at: int | None = None  # the tick of the episode's first executed action
    tcp_pos: np.ndarray | None = None
    joint_pos: np.ndarray | None = None
    gripper_pos: np.ndarray | None = None
    video: ExitStack | None = None
    append_frame: Callable[[np.ndarray], None] | None = None
    video_path: Path | None = None


def _feature(obs: Mapping[str, Any], name: str, i: int) -> np.ndarray | None:
    return np.asarray(obs[name][i], dtype=np.float64) if name in obs else None


class _Rollout:
    """The stepping loop of :func:`evaluate` (one instance per call)."""

    def __init__(
        self,
        policy: Policy,
        envs: VectorEnv,
        *,
        episodes: int,
        seed: int,
        n_action_steps: int,
        action_dim: int,
        execution: ExecutionMode,
        delay_s: float,
        safety: SafetyConfig,
        video_dir: Path | None,
        videos: int,
        fps: float,
        render_frames: bool,
        progress: ProgressFn | None,
    ) -> None:
        self.policy = policy
        self.envs = envs
        self.n = envs.num_envs
        self.episodes = episodes
        self.seed = seed
        self.n_action_steps = n_action_steps
        self.action_dim = action_dim
        self.period_s = 1.0 / float(policy.control_hz)
        self.execution = execution
        self.delay_ticks = math.ceil(delay_s / self.period_s - 1e-9)
        self.delay_s = delay_s
        self.motion = MotionStats()
        self.safety = [SafetyLayer(safety) for _ in range(self.n)]
        self.stalls = 0
        self.dropped = 0
        self.video_dir = video_dir
        self.videos = videos if video_dir is not None else 0
        self.fps = fps
        self.progress = progress
        mode = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        self.next_step_autoreset = mode == gym.vector.AutoresetMode.NEXT_STEP
        self.slots = [_Slot(history=deque(maxlen=policy.n_obs_steps)) for _ in range(self.n)]
        self.records: dict[int, EpisodeRecord] = {}
        self.next_episode = 0
        self.latencies_ms: list[float] = []
        self.render_frames = render_frames

    # ---- observations and frames ---------------------------------------------------------------
    def _pick(self, obs: Mapping[str, Any], i: int) -> dict[str, Any]:
        """Env ``i``'s copy of the features the policy consumes, in the spec's dtype."""
        out: dict[str, Any] = {}
        for name, spec in self.policy.observation_spec.items():
            value = obs[name][i]
            if spec.kind == "language":
                out[name] = str(value)
            else:
                out[name] = np.array(value, dtype=spec.dtype)
        return out

    def _frames(self, obs: Mapping[str, Any]) -> list[np.ndarray | None]:
        """One video frame per env: scene (+ wrist beside it) from obs, else ``env.render()``."""
        if self.render_frames:
            return [None if f is None else np.asarray(f) for f in self.envs.call("render")]
        keys = [f"{cam}_rgb" for cam in ("scene", "wrist") if f"{cam}_rgb" in obs]
        frames: list[np.ndarray | None] = []
        for i in range(self.n):
            parts = [np.asarray(obs[k][i]) for k in keys]
            if len(parts) > 1 and len({p.shape[0] for p in parts}) == 1:
                frames.append(np.concatenate(parts, axis=1))
            else:
                frames.append(parts[0] if parts else None)
        return frames

    def _record_frames(self, obs: Mapping[str, Any], slots: list[int]) -> None:
        recording = [i for i in slots if self.slots[i].append_frame is not None]
        if not recording:
            return
        frames = self._frames(obs)
        for i in recording:
            frame, append = frames[i], self.slots[i].append_frame
            if frame is not None and append is not None:
                append(frame)

    # ---- episodes ------------------------------------------------------------------------------
    def _start(self, i: int, episode: int, obs: Mapping[str, Any]) -> None:
        slot = self.slots[i]
        slot.episode, slot.seed = episode, self.seed + episode
        slot.steps, slot.success, slot.awaiting_autoreset = 0, False, False
        slot.executor = ChunkExecutor(
            ExecutorConfig(
                period_s=self.period_s,
                chunk_len=self.policy.chunk_len,
                n_action_steps=self.n_action_steps,
                mode=self.execution,
            )
        )
        slot.pending, slot.last_chunk, slot.last_vel = None, None, None
        slot.started_at = None
        self._observe_arm(i, obs)
        self.safety[i].reset()
        first = self._pick(obs, i)
        slot.history.clear()
        slot.history.extend([first] * self.policy.n_obs_steps)  # edge padding, as in training
        if episode < self.videos and self.video_dir is not None:
            slot.video_path = self.video_dir / f"episode_{episode:03d}_seed_{slot.seed}.mp4"
            slot.video = ExitStack()
            slot.append_frame = slot.video.enter_context(video_writer(slot.video_path, self.fps))
        LOG.debug("env %d: episode %d (seed %d)", i, episode, slot.seed)

    def _finish(self, i: int) -> None:
        slot = self.slots[i]
        assert slot.episode is not None
        video = None
        if slot.video is not None:
            slot.video.close()
            video = str(slot.video_path)
        slot.video, slot.append_frame, slot.video_path = None, None, None
        record = EpisodeRecord(slot.episode, slot.seed, slot.success, slot.steps, video)
        self.records[slot.episode] = record
        slot.episode = None
        if slot.executor is not None:
            self.stalls += slot.executor.stats.stalls
            self.dropped += slot.executor.stats.dropped
        slot.executor, slot.pending = None, None
        if self.progress is not None:
            self.progress(record, len(self.records), self.episodes)

    def _reset(self, indices: list[int]) -> None:
        """Start the next episodes in ``indices`` (seeded); slots left over go idle."""
        seeds: list[int | None] = [None] * self.n
        mask = np.zeros(self.n, dtype=np.bool_)
        assigned: dict[int, int] = {}
        for i in indices:
            if self.next_episode < self.episodes:
                assigned[i] = self.next_episode
                seeds[i] = self.seed + self.next_episode
                self.next_episode += 1
                mask[i] = True
            elif not self.next_step_autoreset:
                mask[i] = True  # other modes must not step a finished env without a reset
        if not mask.any():
            return
        obs, _ = self.envs.reset(seed=seeds, options={"reset_mask": mask})
        for i, episode in assigned.items():
            self._start(i, episode, obs)
        self._record_frames(obs, list(assigned))

    # ---- policy --------------------------------------------------------------------------------
    def _predict(self, indices: list[int]) -> None:
        """One ``predict_chunk`` for every slot in ``indices`` (with their committed prefixes);
        each chunk is delivered ``delay_ticks`` later, as a reply from a slow server would be."""
        batch: dict[str, Any] = {}
        for name, spec in self.policy.observation_spec.items():
            if spec.kind == "language":
                batch[name] = [self.slots[i].history[-1][name] for i in indices]
            else:
                batch[name] = np.stack(
                    [np.stack([o[name] for o in self.slots[i].history]) for i in indices]
                )
        prefixes = [self._executor(i).committed_prefix(self.slots[i].steps) for i in indices]
        start = time.perf_counter()
        chunk = self.policy.predict_chunk(batch, prefix=stack_prefixes(prefixes, self.action_dim))
        self.latencies_ms.append((time.perf_counter() - start) * 1e3)
        chunk = np.asarray(chunk, dtype=np.float32)
        want = (len(indices), self.policy.chunk_len, self.action_dim)
        if chunk.shape != want:
            raise SpecError(
                f"predict_chunk returned shape {chunk.shape}, expected {want} = (batch, "
                "chunk_len, action dim)"
            )
        for row, i in enumerate(indices):
            slot = self.slots[i]
            self._executor(i).on_request(slot.steps)
            slot.pending = _Pending(slot.steps, slot.steps + self.delay_ticks, chunk[row])

    def _executor(self, i: int) -> ChunkExecutor:
        executor = self.slots[i].executor
        assert executor is not None, "slot without an episode"
        return executor

    def _deliver(self, i: int) -> None:
        slot = self.slots[i]
        if slot.pending is not None and slot.pending.arrival_tick <= slot.steps:
            pending, slot.pending = slot.pending, None
            self._executor(i).on_chunk(pending.chunk, pending.obs_tick, slot.steps, self.delay_s)

    def _observe_arm(self, i: int, obs: Mapping[str, Any]) -> None:
        """What the safety layer needs of slot ``i``'s latest observation."""
        slot = self.slots[i]
        slot.tcp_pos = _feature(obs, "ee_pos", i)
        slot.joint_pos = _feature(obs, "joint_pos", i)
        slot.gripper_pos = _feature(obs, "gripper_pos", i)

    def _next_action(self, i: int) -> np.ndarray:
        """This tick's action for slot ``i``: the executor's, or hold when it has none."""
        slot = self.slots[i]
        timed = self._executor(i).action_for(slot.steps)
        slot.last_chunk = None if timed is None else timed.chunk
        if timed is not None and slot.started_at is None:
            slot.started_at = slot.steps
        grip = slot.gripper_pos
        state = ArmState(
            time=slot.steps * self.period_s,
            tcp_pos=slot.tcp_pos,
            joint_pos=slot.joint_pos,
            gripper_pos=None if grip is None else float(grip.reshape(-1)[0]),
        )
        return self.safety[i].filter(None if timed is None else timed.value, state)

    def safety_counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for layer in self.safety:
            for rule, count in layer.counts.items():
                total[rule] = total.get(rule, 0) + count
        return total

    # ---- loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Roll out until ``episodes`` episodes have finished; returns the env steps counted."""
        if self.videos and self.render_frames:
            self.envs.set_attr("render_mode", "rgb_array")
        first = list(range(min(self.n, self.episodes)))
        obs, _ = self.envs.reset(seed=[self.seed + k for k in range(self.n)])
        for i in first:
            self._start(i, i, obs)
        self.next_episode = len(first)
        self._record_frames(obs, first)
        total_steps = 0
        try:
            while len(self.records) < self.episodes:
                active = [i for i, s in enumerate(self.slots) if s.episode is not None]
                for i in active:
                    self._deliver(i)
                need = [i for i in active if self._executor(i).should_request(self.slots[i].steps)]
                if need:
                    self._predict(need)
                    for i in need:
                        self._deliver(i)
                actions = np.zeros((self.n, self.action_dim), dtype=np.float32)
                chunk_ids: dict[int, int | None] = {}
                for i, slot in enumerate(self.slots):
                    if slot.episode is not None:
                        chunk_ids[i] = slot.last_chunk
                        slot.last_action = self._next_action(i)
                    if slot.last_action is not None:
                        actions[i] = slot.last_action  # idle slots hold their last command
                obs, _, terminated, truncated, info = self.envs.step(actions)
                done = np.logical_or(terminated, truncated)
                success = np.asarray(info.get("is_success", np.zeros(self.n)), dtype=bool)
                has_success = np.asarray(info.get("_is_success", np.ones(self.n)), dtype=bool)
                stepped: list[int] = []
                to_reset: list[int] = []
                for i, slot in enumerate(self.slots):
                    if slot.awaiting_autoreset:  # this step was the env's own (unseeded) reset
                        slot.awaiting_autoreset = False
                        to_reset.append(i)
                        continue
                    if slot.episode is None:
                        if done[i] and not self.next_step_autoreset:
                            to_reset.append(i)
                        continue
                    slot.steps += 1
                    slot.success |= bool(success[i] and has_success[i])
                    if "joint_vel" in obs:
                        vel = np.asarray(obs["joint_vel"][i], dtype=np.float64)
                        started = slot.started_at is not None and slot.started_at < slot.steps - 1
                        if slot.last_vel is not None and started:  # not the wait for chunk one
                            boundary = slot.last_chunk != chunk_ids[i]
                            self.motion.add(float(np.abs(vel - slot.last_vel).max()), boundary)
                        slot.last_vel = vel
                    self._observe_arm(i, obs)
                    slot.history.append(self._pick(obs, i))
                    stepped.append(i)
                self._record_frames(obs, stepped)
                total_steps += len(stepped)
                for i in stepped:
                    if done[i]:
                        self._finish(i)
                        if self.next_step_autoreset:
                            self.slots[i].awaiting_autoreset = True
                        else:
                            to_reset.append(i)
                if to_reset:
                    self._reset(to_reset)
        finally:
            for slot in self.slots:
                if slot.video is not None:
                    slot.video.close()
        return total_steps


def eval_safety(control_mode: ControlMode, control_hz: float) -> SafetyConfig:
    """The sim's safety limits; interventions are summed in the result, so in evaluation each
    rule is logged at most once a minute of sim time instead of once a second."""
    return replace(SafetyConfig.for_sim(control_mode, control_hz), log_interval_s=60.0)


def evaluate(
    policy: Policy,
    task: str,
    episodes: int,
    *,
    variant: str = "default",
    num_envs: int = 2,
    seed: int = 0,
    video_dir: Path | None = None,
    videos: int = 2,
    max_steps: int | None = None,
    n_action_steps: int | None = None,
    execution: ExecutionMode = "rtc",
    inference_delay_ms: float = 0.0,
    safety: SafetyConfig | None = None,
    progress: ProgressFn | None = None,
    task_options: dict[str, Any] | None = None,
) -> EvalResult:
    """Run ``episodes`` seeded episodes (``seed + k``) of ``task`` and summarize them.

    ``num_envs`` envs step in subprocesses (one per core; ``num_envs == 1`` runs in-process).
    The first ``videos`` episodes are written as mp4 under ``video_dir`` (none without one).
    ``max_steps`` overrides the task's episode budget; ``n_action_steps`` the policy's own.
    Chunks are executed by a :class:`ChunkExecutor` in ``execution`` mode; with
    ``inference_delay_ms`` every chunk reaches the robot that much later (in sim time), as from
    a slow server. Every action passes a :class:`SafetyLayer` (``safety``, default: the sim's).
    ``task_options`` go to the task's constructor (e.g. ``{"phrasing": "heldout"}``).
    Raises :class:`SpecError` (naming the feature) when the policy does not fit the env.
    ``policy.reset()`` is called once, before the first episode: the envs run episodes
    concurrently in one batch, so a per-episode reset would clear the other envs' state too.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if videos < 0:
        raise ValueError(f"videos must be >= 0, got {videos}")
    execute = policy.n_action_steps if n_action_steps is None else n_action_steps
    if not 1 <= execute <= policy.chunk_len:
        raise ValueError(
            f"n_action_steps must be in [1, chunk_len={policy.chunk_len}], got {execute}"
        )
    if not (math.isfinite(inference_delay_ms) and inference_delay_ms >= 0):
        raise ValueError(f"inference_delay_ms must be >= 0, got {inference_delay_ms}")
    start = time.perf_counter()
    config = env_config_for(
        policy, task, variant=variant, max_steps=max_steps, task_options=task_options
    )
    n_envs = min(num_envs, episodes)
    LOG.info(
        "evaluating on %s (%s): %d episodes, %d env(s), cameras %s",
        task,
        variant,
        episodes,
        n_envs,
        ", ".join(config.cameras) or "none",
    )
    envs = make_vector_env(n_envs, config, asynchronous=n_envs > 1)
    if not isinstance(envs, (gym.vector.AsyncVectorEnv, gym.vector.SyncVectorEnv)):
        envs.close()
        raise TypeError(f"make_vector_env returned {type(envs).__name__}, not a gymnasium one")
    try:
        obs_spec: SpecDict = envs.call("observation_spec")[0]
        act_spec: SpecDict = envs.call("action_spec")[0]
        policy.check_compatible(obs_spec, act_spec)
        action_dim = sum(spec.size for spec in act_spec.features.values())
        policy.reset()
        rollout = _Rollout(
            policy,
            envs,
            episodes=episodes,
            seed=seed,
            n_action_steps=execute,
            action_dim=action_dim,
            execution=execution,
            delay_s=inference_delay_ms / 1e3,
            safety=safety or eval_safety(config.control_mode, config.control_hz),
            video_dir=video_dir,
            videos=videos,
            fps=config.control_hz,
            render_frames=not any(f"{cam}_rgb" in obs_spec for cam in CAMERA_NAMES),
            progress=progress,
        )
        loop_start = time.perf_counter()
        total_steps = rollout.run()
        loop_s = time.perf_counter() - loop_start
    finally:
        envs.close()
    records = [rollout.records[k] for k in range(episodes)]
    successes = sum(r.success for r in records)
    low, high = wilson_interval(successes, episodes)
    lengths = [r.length for r in records]
    latency = latency_summary(rollout.latencies_ms)
    return EvalResult(
        task=task,
        variant=variant,
        episodes=episodes,
        successes=successes,
        success_rate=successes / episodes,
        ci95_low=low,
        ci95_high=high,
        episode_len_mean=float(statistics.fmean(lengths)),
        episode_len_median=float(statistics.median(lengths)),
        per_episode=records,
        latency_ms_p50=latency["latency_ms_p50"],
        latency_ms_p99=latency["latency_ms_p99"],
        latency_ms_mean=latency["latency_ms_mean"],
        chunks=len(rollout.latencies_ms),
        wall_s=time.perf_counter() - start,
        steps_per_s=total_steps / loop_s if loop_s > 0 else float("nan"),
        num_envs=n_envs,
        execution={
            "mode": execution,
            "inference_delay_ms": inference_delay_ms,
            "stalls": rollout.stalls,
            "dropped_actions": rollout.dropped,
            **rollout.motion.to_json(),
        },
        safety=rollout.safety_counts(),
        videos=[r.video for r in records if r.video is not None],
    )


__all__ = ["EpisodeRecord", "EvalResult", "ProgressFn", "env_config_for", "evaluate"]

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
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from robot_learning.eval.stats import latency_summary, wilson_interval
from robot_learning.eval.video import video_writer
from robot_learning.sim.env import CAMERA_NAMES, EnvConfig
from robot_learning.sim.randomization import check_variant
from robot_learning.sim.vector import make_vector_env
from robot_learning.specs import SpecDict, SpecError

if TYPE_CHECKING:  # importing the policies package pulls in torch; evaluation itself needs none
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)
RENDER_SIZE = (240, 320)  # video frames for policies without cameras (env.render())


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluated episode: which seed, whether it succeeded, how many env steps it took."""

    index: int
    seed: int
    success: bool
    length: int
    video: str | None = None


@dataclass
class EvalResult:
    """What ``evaluate`` measured; :meth:`to_json` gives the snake_case, unit-suffixed keys.

    ``wall_s`` covers the whole call (env start-up included); ``steps_per_s`` counts the env
    steps of the evaluated episodes over the rollout loop only. Latencies are per
    ``predict_chunk`` call (one call serves every env that needed a chunk at that step).
    """

    task: str
    variant: str
    episodes: int
    successes: int
    success_rate: float
    ci95_low: float
    ci95_high: float
    episode_len_mean: float
    episode_len_median: float
    per_episode: list[EpisodeRecord]
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_mean: float
    chunks: int
    wall_s: float
    steps_per_s: float
    num_envs: int
    videos: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "variant": self.variant,
            "success_rate": self.success_rate,
            "success_ci95_low": self.ci95_low,
            "success_ci95_high": self.ci95_high,
            "successes": self.successes,
            "episodes": self.episodes,
            "episode_len_mean": self.episode_len_mean,
            "episode_len_median": self.episode_len_median,
            "latency_ms_p50": self.latency_ms_p50,
            "latency_ms_p99": self.latency_ms_p99,
            "latency_ms_mean": self.latency_ms_mean,
            "chunks": self.chunks,
            "wall_s": self.wall_s,
            "steps_per_s": self.steps_per_s,
            "num_envs": self.num_envs,
            "videos": list(self.videos),
            "per_episode": [asdict(ep) for ep in self.per_episode],
        }


VectorEnv = gym.vector.AsyncVectorEnv | gym.vector.SyncVectorEnv
ProgressFn = Callable[[EpisodeRecord, int, int], None]  # (episode, finished, total)


def env_config_for(
    policy: Policy,
    task: str,
    *,
    variant: str = "default",
    max_steps: int | None = None,
    render_size: tuple[int, int] = RENDER_SIZE,
) -> EnvConfig:
    """The env that gives ``policy`` its features: cameras, image size, depth, tactile, rate.

    Only known cameras are configured; a feature the env cannot make (an unknown camera, a second
    image size) is left for ``check_compatible`` to report by name.
    """
    spec = policy.observation_spec
    cameras: list[str] = []
    image_size: tuple[int, int] | None = None
    depth = False
    for name, feature in spec.items():
        for suffix, kind in (("_rgb", "rgb"), ("_depth", "depth")):
            if feature.kind != kind or not name.endswith(suffix):
                continue
            cam = name[: -len(suffix)]
            if cam not in CAMERA_NAMES:
                continue
            if cam not in cameras:
                cameras.append(cam)
            image_size = image_size or (feature.shape[0], feature.shape[1])
            depth = depth or kind == "depth"
    tactile = [f for n, f in spec.items() if n.startswith("tactile_") and f.kind == "tactile"]
    extra: dict[str, Any] = {}
    if tactile:
        extra["tactile_grid"] = (tactile[0].shape[0], tactile[0].shape[1])
    return EnvConfig(
        task=task,
        control_hz=float(policy.control_hz),
        cameras=tuple(cameras),
        image_size=image_size or render_size,
        depth=depth,
        tactile=bool(tactile),
        variant=check_variant(variant),
        max_episode_steps=max_steps,
        **extra,
    )


@dataclass
class _Slot:
    """Per-env state: the running episode, its observation window and unexecuted actions."""

    history: deque[dict[str, Any]]
    episode: int | None = None
    seed: int = 0
    steps: int = 0
    success: bool = False
    awaiting_autoreset: bool = False
    actions: deque[np.ndarray] = field(default_factory=deque)
    last_action: np.ndarray | None = None
    video: ExitStack | None = None
    append_frame: Callable[[np.ndarray], None] | None = None
    video_path: Path | None = None


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
        slot.actions.clear()
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
        slot.actions.clear()
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
        """One ``predict_chunk`` for every slot in ``indices``; queue ``n_action_steps`` each."""
        batch: dict[str, Any] = {}
        for name, spec in self.policy.observation_spec.items():
            if spec.kind == "language":
                batch[name] = [self.slots[i].history[-1][name] for i in indices]
            else:
                batch[name] = np.stack(
                    [np.stack([o[name] for o in self.slots[i].history]) for i in indices]
                )
        start = time.perf_counter()
        chunk = self.policy.predict_chunk(batch)
        self.latencies_ms.append((time.perf_counter() - start) * 1e3)
        chunk = np.asarray(chunk, dtype=np.float32)
        want = (len(indices), self.n_action_steps, self.action_dim)
        if chunk.ndim != 3 or chunk.shape[0] != want[0] or chunk.shape[2] != want[2]:
            raise SpecError(
                f"predict_chunk returned shape {chunk.shape}, expected "
                f"({want[0]}, chunk_len, {want[2]}) = (batch, chunk_len, action dim)"
            )
        if chunk.shape[1] < self.n_action_steps:
            raise SpecError(
                f"predict_chunk returned {chunk.shape[1]} actions per chunk, fewer than the "
                f"{self.n_action_steps} to execute (n_action_steps)"
            )
        for row, i in enumerate(indices):
            self.slots[i].actions.extend(chunk[row, : self.n_action_steps])

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
                need = [
                    i for i, s in enumerate(self.slots) if s.episode is not None and not s.actions
                ]
                if need:
                    self._predict(need)
                actions = np.zeros((self.n, self.action_dim), dtype=np.float32)
                for i, slot in enumerate(self.slots):
                    if slot.episode is not None:
                        slot.last_action = slot.actions.popleft()
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
    progress: ProgressFn | None = None,
) -> EvalResult:
    """Run ``episodes`` seeded episodes (``seed + k``) of ``task`` and summarize them.

    ``num_envs`` envs step in subprocesses (one per core; ``num_envs == 1`` runs in-process).
    The first ``videos`` episodes are written as mp4 under ``video_dir`` (none without one).
    ``max_steps`` overrides the task's episode budget; ``n_action_steps`` the policy's own.
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
    start = time.perf_counter()
    config = env_config_for(policy, task, variant=variant, max_steps=max_steps)
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
        videos=[r.video for r in records if r.video is not None],
    )


__all__ = ["EpisodeRecord", "EvalResult", "ProgressFn", "env_config_for", "evaluate"]

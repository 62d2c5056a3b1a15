"""What an evaluation measured: per-episode records and the summary with its JSON form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    execution: dict[str, Any] = field(default_factory=dict)
    safety: dict[str, int] = field(default_factory=dict)
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
            "execution": dict(self.execution),
            "safety_interventions": dict(self.safety),
            "videos": list(self.videos),
            "per_episode": [asdict(ep) for ep in self.per_episode],
        }

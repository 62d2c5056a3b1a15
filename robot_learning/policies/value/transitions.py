"""Chunk-level transitions for the offline critic, read from an episode store.

Why chunk-level: the wrapped policy commits to ``action_horizon`` actions at a time, so one
decision is ``(window at t, actions t..t+h-1) -> window at t+h``, and the discount applies once
per chunk step. Rewards are sparse and come from the episode labels ``collect`` records
(``success`` in each episode's metadata: sim robots know it, on hardware the operator's key says
it): 1 on the chunk that contains the final step of a successful episode, 0 everywhere else.
Every episode end is terminal (a failure that ran out of time is a failure of the task).
Unlabelled episodes carry no reward signal and are skipped, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.data.sampler import WindowSampler
from robot_learning.data.store import EpisodeStore
from robot_learning.policies.value.q_network import QConfig

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)
FPS_TOLERANCE = 1e-3


class CriticDataError(ValueError):
    """The store (or the base policy) cannot give the critic what it needs; says what is valid."""


@dataclass
class Transitions:
    """``N`` transitions: windows ``[N, n_obs, *shape]`` per key, chunks ``[N, h, A]``."""

    obs: dict[str, Any]
    actions: np.ndarray
    next_obs: dict[str, Any]
    reward: np.ndarray  # float32 [N]
    done: np.ndarray  # float32 [N], 1 where the episode ends inside the chunk
    episode: np.ndarray  # int64 [N], the store's episode index
    success: np.ndarray  # bool [N], the episode's label

    def __len__(self) -> int:
        return len(self.reward)


def labelled_episodes(store: EpisodeStore, episodes: Sequence[int] | None = None) -> list[int]:
    """Episodes whose ``success`` label is True/False; refuses a store without labels."""
    chosen = list(range(store.n_episodes)) if episodes is None else list(episodes)
    labels = {i: store.episode_meta(i).get("success") for i in chosen}
    labelled = [i for i in chosen if isinstance(labels[i], bool)]
    unlabelled = len(chosen) - len(labelled)
    if not labelled:
        raise CriticDataError(
            f"{store.root} has no success metadata: none of its {len(chosen)} episode(s) is "
            "labelled (each episode's 'success' must be true or false; 'robot-learning "
            "collect' records it: sim robots label it, on hardware save with s (success) or f "
            "(failure))"
        )
    if not any(labels[i] for i in labelled):
        raise CriticDataError(
            f"{store.root}: none of its {len(labelled)} labelled episode(s) succeeded; the "
            "critic's only reward is success, so it needs at least one successful episode"
        )
    if unlabelled:
        LOG.warning("%s: skipping %d episode(s) without a success label", store.root, unlabelled)
    if all(labels[i] for i in labelled):
        LOG.warning("%s: no failed episodes; the critic can only learn time-to-success", store.root)
    return labelled


def check_base_matches_store(base: Policy, store: EpisodeStore) -> None:
    """Every feature the base consumes/produces must be recorded with the same shape and kind."""
    have = store.features
    for role, specs in (("observation", base.observation_spec), ("action", base.action_spec)):
        for name, need in specs.items():
            if name not in have:
                raise CriticDataError(
                    f"the base policy's {role} {name!r} is not recorded in {store.root}; the "
                    f"store records: {', '.join(have.names())}"
                )
            got = have[name]
            if (got.kind, got.shape) != (need.kind, need.shape):
                raise CriticDataError(
                    f"{role} {name!r}: the base policy expects shape {need.shape} kind "
                    f"{need.kind!r}, {store.root} records shape {got.shape} kind {got.kind!r}"
                )
    if abs(store.fps - base.control_hz) > FPS_TOLERANCE:
        raise CriticDataError(
            f"{store.root} was recorded at {store.fps:g} Hz but the base policy runs at "
            f"{base.control_hz:g} Hz; chunks would not mean the same motion (use a store "
            "recorded at the base's control rate)"
        )


def q_config_for(base: Policy, store: EpisodeStore, **overrides: Any) -> QConfig:
    """The critic's inputs for ``base``: its low-dim observations and its instruction (if any)."""
    obs_keys = [k for k, s in base.observation_spec.items() if s.kind == "lowdim"]
    language = [k for k, s in base.observation_spec.items() if s.kind == "language"]
    language_key = next((k for k in language if k in store.features), None)
    if not obs_keys and language_key is None:
        raise CriticDataError(
            "the base policy has no low-dim (or language) observations for the critic to read; "
            f"its observations: {', '.join(base.observation_spec)}"
        )
    (action_key,) = list(base.action_spec)
    values: dict[str, Any] = {
        "obs_keys": obs_keys,
        "obs_dims": [base.observation_spec[k].size for k in obs_keys],
        "action_dim": base.action_dim,
        "n_obs_steps": base.n_obs_steps,
        "action_horizon": max(1, min(base.n_action_steps, base.chunk_len)),
        "action_key": action_key,
        "language_key": language_key,
        **overrides,
    }
    return QConfig(**values)


def _check_keys(store: EpisodeStore, config: QConfig) -> None:
    needed = [*config.obs_keys, config.action_key]
    if config.language_key is not None:
        needed.append(config.language_key)
    for key in needed:
        if key not in store.features:
            raise CriticDataError(
                f"the critic needs feature {key!r}, which {store.root} does not record; it "
                f"records: {', '.join(store.features.names())}"
            )


def load_transitions(
    path: str | Path, config: QConfig, episodes: Sequence[int] | None = None
) -> Transitions:
    """All chunk transitions of the labelled ``episodes`` (default: all) of the store."""
    store = EpisodeStore.open(path, "r")
    try:
        _check_keys(store, config)
        chosen = labelled_episodes(store, episodes)
        labels = {i: bool(store.episode_meta(i)["success"]) for i in chosen}
    finally:
        store.close()
    sampler = WindowSampler(
        path,
        n_obs_steps=1,
        horizon=1,
        obs_keys=[*config.obs_keys, *([config.language_key] if config.language_key else [])],
        action_keys=[config.action_key],
        cache="lowdim",
        episodes=chosen,
    )
    n_obs, h = config.n_obs_steps, config.action_horizon
    ends = sampler.episode_ends
    back = np.arange(-n_obs + 1, 1)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "next", "done", "ep")}
    rewards: list[np.ndarray] = []
    for ep in chosen:
        start = int(ends[ep - 1]) if ep else 0
        length = int(ends[ep]) - start
        t = np.arange(length)
        nxt = t + h
        done = nxt >= length
        parts["obs"].append(start + np.clip(t[:, None] + back, 0, length - 1))
        parts["act"].append(start + np.clip(t[:, None] + np.arange(h), 0, length - 1))
        parts["next"].append(start + np.clip(nxt[:, None] + back, 0, length - 1))
        parts["done"].append(done)
        parts["ep"].append(np.full(length, ep, np.int64))
        rewards.append((done & labels[ep]).astype(np.float32))
    rows = {k: np.concatenate(v) for k, v in parts.items()}
    episode = rows["ep"]
    obs: dict[str, Any] = {}
    next_obs: dict[str, Any] = {}
    for key in config.obs_keys:
        array = sampler.lowdim_array(key).astype(np.float32)
        obs[key] = array[sampler.stream_rows(key, rows["obs"])]
        next_obs[key] = array[sampler.stream_rows(key, rows["next"])]
    if config.language_key is not None:
        texts = sampler.languages[config.language_key]
        obs[config.language_key] = [texts[int(e)] for e in episode]
        next_obs[config.language_key] = obs[config.language_key]
    action = sampler.lowdim_array(config.action_key).astype(np.float32)
    actions = action[sampler.stream_rows(config.action_key, rows["act"])]
    success = np.array([labels[int(e)] for e in episode], dtype=bool)
    return Transitions(
        obs=obs,
        actions=actions.reshape(len(episode), h, -1),
        next_obs=next_obs,
        reward=np.concatenate(rewards),
        done=rows["done"].astype(np.float32),
        episode=episode,
        success=success,
    )

"""Demonstrations as residual transitions, for the off-policy learner's 50/50 batches.

For every step of every successful demonstration, the frozen base is asked for its chunk on the
same observation window the policy would see; the residual that turns the base's action into
the demonstrator's is the stored "action" (clipped to the bound: larger corrections are beyond
what the residual may do). Rewards are the sparse task reward: 1 on the last step of a
successful episode, which ends it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from robot_learning.data.store import EpisodeStore
from robot_learning.rl.replay import ReplayBuffer
from robot_learning.rl.residual_policy import ResidualPolicy

LOG = logging.getLogger(__name__)
BATCH = 256
UNIT_LIMIT = 0.999  # tanh-squashed residuals never reach +-1 exactly


def demo_transitions(policy: ResidualPolicy, store_path: str | Path) -> ReplayBuffer:
    """A buffer holding every step of the store's successful episodes as residual transitions."""
    keys = list(policy.observation_spec)
    with EpisodeStore.open(store_path) as store:
        missing = [k for k in [*keys, policy.action_key] if k not in store.features]
        if missing:
            raise ValueError(
                f"{store_path}: the demonstrations lack {missing}; the base needs "
                f"{keys + [policy.action_key]}"
            )
        episodes = [
            store.read_episode(i, [*keys, policy.action_key])
            for i, meta in enumerate(store.episodes_meta())
            if meta.get("success")
        ]
    if not episodes:
        raise ValueError(f"{store_path}: no successful episodes to learn from")
    steps = sum(len(e[policy.action_key]) for e in episodes)
    buffer = ReplayBuffer(steps, policy.feature_dim, policy.action_dim)
    n_obs = policy.n_obs_steps
    for episode in episodes:
        length = len(episode[policy.action_key])
        # window t holds observations t-n_obs+1 .. t, padded with the first at the start
        index = np.clip(np.arange(length)[:, None] + np.arange(-n_obs + 1, 1)[None, :], 0, None)
        raw = np.zeros((length, policy.feature_dim), np.float32)
        base_action = np.zeros((length, policy.action_dim), np.float32)
        for start in range(0, length, BATCH):
            rows = index[start : start + BATCH]
            batch = {k: np.asarray(episode[k])[rows] for k in keys}
            chunk = policy.base_chunk(batch)
            raw[start : start + len(rows)] = policy.raw_features(batch, chunk)
            base_action[start : start + len(rows)] = chunk[:, 0]
        expert = np.asarray(episode[policy.action_key], np.float32)
        base = np.clip(base_action, policy.low, policy.high)
        residual = np.clip((expert - base) / policy.bound, -UNIT_LIMIT, UNIT_LIMIT)
        reward = np.zeros(length, np.float32)
        reward[-1] = 1.0
        done = reward.copy()
        nxt = np.concatenate([raw[1:], raw[-1:]])
        buffer.add(raw, residual, reward, done, nxt)
    LOG.info("%d demonstration transitions from %d successful episodes", steps, len(episodes))
    return buffer

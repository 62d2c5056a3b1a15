"""Offline critic training with Implicit Q-Learning (IQL, Kostrikov et al. 2022).

Why IQL and not Cal-QL (both are what V-GPS uses): IQL never evaluates the critic on actions
outside the dataset while training. ``V(s)`` is fitted as an upper expectile of ``Q(s, a)`` over
the dataset's own actions, and ``Q`` regresses onto ``r + gamma * V(s')``, so no policy has to be
sampled during training (Cal-QL's conservative term needs actions from a policy and Monte-Carlo
return bounds per state). That keeps training to small MLP updates, a few milliseconds per step
on a laptop CPU, and makes it independent of which base policy is wrapped later. Conservatism
at selection time comes from the LayerNorm heads and from taking the minimum over the ensemble.

Training stops at ``steps`` or ``minutes``, whichever comes first, with a progress line every
``log_every_s`` seconds.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_learning.policies.normalizer import Normalizer
from robot_learning.policies.value.q_network import QConfig, QFunction
from robot_learning.policies.value.transitions import Transitions

LOG = logging.getLogger(__name__)
SCORE_BATCH = 4096


@dataclass
class IQLConfig:
    """Optimisation settings; ``gamma`` discounts once per chunk step."""

    steps: int = 5000
    minutes: float | None = None
    batch_size: int = 256
    lr: float = 3e-4
    gamma: float = 0.95
    expectile: float = 0.7
    target_tau: float = 0.01  # Polyak rate of the target Q heads that V regresses onto
    seed: int = 0
    log_every_s: float = 30.0
    # torch threads while training: small MLP updates are fastest on one thread, and more
    # threads spin against each other when the cores are busy (10-20x slower measured)
    threads: int = 1

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}"
            )
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma}")
        if not 0.5 <= self.expectile < 1:
            raise ValueError(f"expectile must be in [0.5, 1), got {self.expectile}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not 0 < self.target_tau <= 1:
            raise ValueError(f"target_tau must be in (0, 1], got {self.target_tau}")


@dataclass
class TrainSummary:
    """What the run did; stored in the checkpoint's ``config.json`` and printed by the CLI."""

    steps: int
    seconds: float
    stopped_by: str  # "steps" or "minutes"
    transitions: int
    episodes: int
    successful_episodes: int
    q_loss: float
    v_loss: float
    q_mean_success: float  # mean pessimistic Q over transitions of successful episodes
    q_mean_failure: float  # the same over failed episodes (NaN when there are none)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fit_normalizer(data: Transitions, config: QConfig) -> Normalizer:
    """Per-element z-scoring of every critic input, from the training transitions."""
    stats: dict[str, dict[str, np.ndarray]] = {}
    for key, dim in zip(config.obs_keys, config.obs_dims):
        values = np.asarray(data.obs[key], np.float64).reshape(-1, dim)
        stats[key] = {"mean": values.mean(0), "std": values.std(0)}
    actions = np.asarray(data.actions, np.float64).reshape(-1, config.action_dim)
    stats[config.action_key] = {"mean": actions.mean(0), "std": actions.std(0)}
    return Normalizer.fit(stats, {k: "gaussian" for k in stats})


def _min_q(heads: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([head(x).squeeze(-1) for head in heads]).min(dim=0).values


def pessimistic_q(q: QFunction, data: Transitions) -> np.ndarray:
    """``min_i Q_i`` of every transition's own ``(window, chunk)``, in batches."""
    out: list[np.ndarray] = []
    for i in range(0, len(data), SCORE_BATCH):
        rows = slice(i, i + SCORE_BATCH)
        obs = {k: v[rows] for k, v in data.obs.items()}
        out.append(q.score(obs, data.actions[rows]))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train_q(
    data: Transitions, config: QConfig, iql: IQLConfig | None = None
) -> tuple[QFunction, TrainSummary]:
    """Fit the critic on ``data`` (see the module docstring); returns it in eval mode."""
    iql = iql or IQLConfig()
    iql.validate()
    if len(data) == 0:
        raise ValueError("no transitions to train the critic on")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(iql.threads)
    try:
        return _train(data, config, iql)
    finally:
        torch.set_num_threads(previous_threads)


def _train(data: Transitions, config: QConfig, iql: IQLConfig) -> tuple[QFunction, TrainSummary]:
    torch.manual_seed(iql.seed)
    q = QFunction(config, fit_normalizer(data, config))
    with torch.no_grad():
        states = q.state_features(data.obs)
        next_states = q.state_features(data.next_obs)
        actions = q.action_features(data.actions)
    x_all = torch.cat([states, actions], dim=-1)
    reward = torch.from_numpy(np.asarray(data.reward, np.float32))
    not_done = 1.0 - torch.from_numpy(np.asarray(data.done, np.float32))
    target_heads = copy.deepcopy(q.heads).requires_grad_(False)
    opt_q = torch.optim.Adam(q.heads.parameters(), lr=iql.lr)
    opt_v = torch.optim.Adam(q.value.parameters(), lr=iql.lr)
    gen = torch.Generator().manual_seed(iql.seed)
    n = len(data)
    start = last_log = time.monotonic()
    deadline = None if iql.minutes is None else start + 60.0 * iql.minutes
    LOG.info(
        "training the critic (IQL, %d heads) on %d transitions for up to %d steps%s",
        config.ensemble,
        n,
        iql.steps,
        "" if iql.minutes is None else f" or {iql.minutes:g} min",
    )
    q_loss = v_loss = torch.zeros(())
    step, stopped_by = 0, "steps"
    while step < iql.steps:
        idx = torch.randint(n, (min(iql.batch_size, n),), generator=gen)
        x, s, s_next = x_all[idx], states[idx], next_states[idx]
        with torch.no_grad():
            q_target = _min_q(target_heads, x)
        diff = q_target - q.v(s)
        weight = torch.abs(iql.expectile - (diff < 0).float())
        v_loss = (weight * diff.pow(2)).mean()
        opt_v.zero_grad(set_to_none=True)
        v_loss.backward()
        opt_v.step()
        with torch.no_grad():
            backup = reward[idx] + iql.gamma * not_done[idx] * q.v(s_next)
        preds = torch.stack([head(x).squeeze(-1) for head in q.heads])
        q_loss = (preds - backup).pow(2).mean()
        opt_q.zero_grad(set_to_none=True)
        q_loss.backward()
        opt_q.step()
        with torch.no_grad():
            for tgt, src in zip(target_heads.parameters(), q.heads.parameters()):
                tgt.lerp_(src, iql.target_tau)
        step += 1
        now = time.monotonic()
        if now - last_log >= iql.log_every_s:
            last_log = now
            LOG.info(
                "critic step %d/%d  q_loss %.4g  v_loss %.4g  mean target %.3f  %.0f steps/s",
                step,
                iql.steps,
                q_loss.item(),
                v_loss.item(),
                backup.mean().item(),
                step / (now - start),
            )
        if deadline is not None and now >= deadline:
            stopped_by = "minutes"
            break
    q.eval()
    scores = pessimistic_q(q, data)
    summary = TrainSummary(
        steps=step,
        seconds=round(time.monotonic() - start, 3),
        stopped_by=stopped_by,
        transitions=n,
        episodes=len(np.unique(data.episode)),
        successful_episodes=len(np.unique(data.episode[data.success])),
        q_loss=q_loss.item(),
        v_loss=v_loss.item(),
        q_mean_success=_mean(scores[data.success]),
        q_mean_failure=_mean(scores[~data.success]),
    )
    LOG.info(
        "critic trained: %d steps in %.1f s; mean Q %.3f on successful episodes, %.3f on failed",
        summary.steps,
        summary.seconds,
        summary.q_mean_success,
        summary.q_mean_failure,
    )
    return q, summary


def _mean(values: Sequence[float] | np.ndarray) -> float:
    arr = np.asarray(values, np.float64)
    return float(arr.mean()) if arr.size else float("nan")

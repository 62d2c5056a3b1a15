"""Off-policy residual RL: SAC with a LayerNorm Q ensemble and demonstration-mixed batches.

Follows ResFiT (Ankile et al. 2025) and RLPD (Ball et al. 2023): the frozen base acts, a
tanh-squashed Gaussian residual is learned off-policy; every batch is ``demo_fraction``
demonstration transitions (:mod:`.demos`) and the rest online (``demo_fraction=0``: online
only, which also admits shaped rewards the demonstrations do not carry); ``updates_per_step``
gradient updates per collected transition; clipped double-Q targets from two random ensemble
members, the actor maximises the ensemble mean (less an optional penalty on the squared
residual, so it leaves the base only where the critic says it pays); the temperature is tuned
to a target entropy.
Feature statistics are fitted on the demonstrations and the first online steps, then frozen,
so stored transitions keep their meaning.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_learning.rl.agent_state import pack, unpack
from robot_learning.rl.config import RLConfig
from robot_learning.rl.demos import demo_transitions
from robot_learning.rl.networks import QEnsemble
from robot_learning.rl.replay import ReplayBuffer
from robot_learning.rl.residual_env import ResidualEnv, ResidualVecEnv
from robot_learning.rl.residual_policy import ResidualPolicy
from robot_learning.rl.run import RunBook

LOG = logging.getLogger(__name__)
REPLAY_FILE = "replay.safetensors"


class SACAgent:
    """Actor (the policy's residual), Q ensemble + target, temperature, optimizers."""

    def __init__(self, policy: ResidualPolicy, config: RLConfig) -> None:
        self.policy = policy
        self.cfg = config.sac
        self.q = QEnsemble(
            policy.feature_dim, policy.action_dim, self.cfg.critic_hidden, self.cfg.num_q
        )
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(self.cfg.init_alpha)), requires_grad=True)
        self.target_entropy = -self.cfg.target_entropy_scale * policy.action_dim
        self.actor_opt = torch.optim.Adam(policy.actor.parameters(), lr=self.cfg.lr)
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=self.cfg.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=self.cfg.lr)
        self.stats_frozen = False

    def _parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        modules: dict[str, nn.Module] = {
            "actor": self.policy.actor,
            "q": self.q,
            "q_target": self.q_target,
        }
        optimizers: dict[str, torch.optim.Optimizer] = {
            "actor_opt": self.actor_opt,
            "q_opt": self.q_opt,
            "alpha_opt": self.alpha_opt,
        }
        return modules, optimizers

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything ``--resume`` restores except the replay buffer (saved beside it)."""
        tensors, groups = pack(*self._parts())
        tensors["log_alpha"] = self.log_alpha.detach().reshape(1)
        tensors.update(self.policy.feature_stats.state("features"))
        return tensors, {"groups": groups, "stats_frozen": self.stats_frozen}

    def load(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        unpack(tensors, info["groups"], *self._parts())
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"][0])
        self.policy.feature_stats.load(tensors, "features")
        self.stats_frozen = bool(info.get("stats_frozen", False))

    def update(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, float]:
        cfg, actor, norm = self.cfg, self.policy.actor, self.policy.features
        x, x2 = norm(batch["features"]), norm(batch["next_features"])
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = actor.sample_tanh(x2)
            pair = rng.choice(cfg.num_q, 2, replace=False)
            q2 = self.q_target(x2, a2)[torch.as_tensor(pair)].min(0).values
            target = batch["reward"] + cfg.gamma * (1 - batch["done"]) * (q2 - alpha * logp2)
        q = self.q(x, batch["residual"])
        q_loss = ((q - target) ** 2).mean(1).sum()
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        a, logp = actor.sample_tanh(x)
        q_pi = self.q(x, a).mean(0)
        actor_loss = (alpha * logp - q_pi).mean()
        if cfg.residual_penalty:
            mode = actor.bound(actor.distribution(x)[0])
            actor_loss = actor_loss + cfg.residual_penalty * mode.pow(2).sum(-1).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.q.parameters(), self.q_target.parameters()):
                tp.lerp_(p, cfg.tau)
        return {
            "q_loss": float(q_loss.detach()),
            "actor_loss": float(actor_loss.detach()),
            "alpha": float(alpha.detach()),
            "q_mean": float(q.mean().detach()),
        }


def train_sac(
    config: RLConfig,
    policy: ResidualPolicy,
    out: Path,
    resume: bool,
    env: ResidualEnv | None = None,
    demos: ReplayBuffer | None = None,
) -> RunBook:
    """Run residual SAC until the step or time budget; returns the run's book-keeping.

    ``env`` defaults to the sim task of ``config``; ``demos`` to the transitions of the
    demonstration store ``config.demos``.
    """
    cfg = config.sac
    if cfg.demo_fraction > 0 and demos is None and config.demos is None:
        raise ValueError("SAC needs a demonstration store (demos), or sac.demo_fraction=0")
    book = RunBook(out, config, resume)
    torch.manual_seed(config.seed)
    np_rng = np.random.default_rng(config.seed)
    agent = SACAgent(policy, config)
    online = ReplayBuffer(cfg.buffer_size, policy.feature_dim, policy.action_dim)
    if demos is None and cfg.demo_fraction > 0:
        assert config.demos is not None
        demos = demo_transitions(policy, config.demos)
    if resume and book.has_state():
        tensors, info = book.load(np_rng, lambda d: online.load(d / REPLAY_FILE))
        agent.load(tensors, info)
    elif not agent.stats_frozen and demos is not None:
        policy.feature_stats.update(demos.data["features"][: len(demos)])
    n_demo = round(cfg.batch_size * cfg.demo_fraction) if demos is not None else 0
    n_online = cfg.batch_size - n_demo
    env = env or ResidualVecEnv(
        policy,
        config.task,
        config.num_envs,
        variant=config.variant,
        reward=config.reward,
        seed=int(np_rng.integers(2**31)),
        max_steps=config.episode_steps,
    )
    owed = 0.0
    stats: dict[str, float] = {}
    try:
        if not book.has_state() and config.eval_every_steps:
            book.evaluate(policy)  # the starting point: the base with a (near) zero residual
        raw = env.reset()
        while not book.should_stop():
            with torch.no_grad():
                residual, _ = policy.actor.sample_tanh(policy.features(raw))
            result = env.step(residual.numpy())
            book.record(result)
            nxt = np.where(
                result.truncated[:, None], result.final_raw_features, result.raw_features
            )
            online.add(
                raw, residual.numpy(), result.reward, result.terminated.astype(np.float32), nxt
            )
            raw = result.raw_features
            if len(online) < cfg.learning_starts:
                if not agent.stats_frozen:
                    policy.feature_stats.update(raw)
                continue
            agent.stats_frozen = True
            owed += cfg.updates_per_step * config.num_envs
            while owed >= 1:
                owed -= 1
                batch = online.sample(n_online, np_rng)
                if n_demo:
                    assert demos is not None
                    batch = _mix(demos.sample(n_demo, np_rng), batch)
                stats = agent.update(batch, np_rng)
                book.updates += 1
            book.report(stats)
            if book.due_eval():
                book.evaluate(policy)
            if book.due_checkpoint():
                _save(book, agent, online, np_rng)
        _save(book, agent, online, np_rng)
        book.report(stats, force=True)
    finally:
        env.close()
    return book


def _mix(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def _save(
    book: RunBook, agent: SACAgent, online: ReplayBuffer, np_rng: np.random.Generator
) -> None:
    tensors, info = agent.state()
    book.save(
        agent.policy,
        tensors,
        info,
        np_rng,
        extra_files=lambda d: online.save(d / REPLAY_FILE),
    )
    book.plot()

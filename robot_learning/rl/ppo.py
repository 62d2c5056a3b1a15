"""Residual PPO (ResiP, Ankile et al. 2024), CleanRL-style in one readable loop.

The base is frozen; the agent is the residual actor (a Gaussian whose sample is clipped to
[-1, 1] and scaled by the residual bound) and a value net on the same features. Per iteration:
``rollout_steps`` steps of every env, GAE(lambda), then ``epochs`` passes of clipped-objective
minibatch updates. The first ``value_warmup_iters`` iterations fit only the critic, so the first
policy gradients use a value baseline that already knows the base's success rate. Time-limit
cut-offs bootstrap from the value of the last observation; successes end the episode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_learning.rl.agent_state import pack, unpack
from robot_learning.rl.config import RLConfig
from robot_learning.rl.feature_norm import RunningMeanStd
from robot_learning.rl.networks import gaussian_entropy, gaussian_log_prob, mlp
from robot_learning.rl.residual_env import ResidualEnv, ResidualVecEnv
from robot_learning.rl.residual_policy import ResidualPolicy
from robot_learning.rl.run import RunBook

LOG = logging.getLogger(__name__)


class ReturnScaler:
    """Divides rewards by the running std of the discounted return (CleanRL NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float) -> None:
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(num_envs, np.float64)
        self.gamma = gamma

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + reward
        self.stats.update(self.returns)
        self.returns[done] = 0.0
        return (reward / np.sqrt(self.stats.var + 1e-8)).astype(np.float32)


class PPOAgent:
    """The residual policy's actor plus a value net, their optimizers and normalizers."""

    def __init__(self, policy: ResidualPolicy, config: RLConfig) -> None:
        self.policy = policy
        self.cfg = config.ppo
        self.critic = mlp(policy.feature_dim, self.cfg.critic_hidden, 1)
        self.actor_opt = torch.optim.Adam(policy.actor.parameters(), lr=self.cfg.lr_actor, eps=1e-5)
        self.critic_opt = torch.optim.Adam(
            self.critic.parameters(), lr=self.cfg.lr_critic, eps=1e-5
        )
        self.returns = ReturnScaler(config.num_envs, self.cfg.gamma)

    def _parts(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        modules: dict[str, nn.Module] = {"actor": self.policy.actor, "critic": self.critic}
        optimizers: dict[str, torch.optim.Optimizer] = {
            "actor_opt": self.actor_opt,
            "critic_opt": self.critic_opt,
        }
        return modules, optimizers

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything ``--resume`` restores: networks, optimizers, both normalizers."""
        tensors, groups = pack(*self._parts())
        tensors.update(self.policy.feature_stats.state("features"))
        tensors.update(self.returns.stats.state("returns"))
        tensors["returns.running"] = torch.from_numpy(self.returns.returns.copy())
        return tensors, {"groups": groups}

    def load(self, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        unpack(tensors, info["groups"], *self._parts())
        self.policy.feature_stats.load(tensors, "features")
        self.returns.stats.load(tensors, "returns")
        self.returns.returns = tensors["returns.running"].numpy().copy()

    def value(self, features: torch.Tensor) -> torch.Tensor:
        return self.critic(features).squeeze(-1)


def train_ppo(
    config: RLConfig,
    policy: ResidualPolicy,
    out: Path,
    resume: bool,
    env: ResidualEnv | None = None,
) -> RunBook:
    """Run residual PPO until the step or time budget; returns the run's book-keeping.

    ``env`` defaults to the sim task of ``config`` (:class:`ResidualVecEnv`).
    """
    cfg = config.ppo
    book = RunBook(out, config, resume)
    torch.manual_seed(config.seed)
    np_rng = np.random.default_rng(config.seed)
    agent = PPOAgent(policy, config)
    if resume and book.has_state():
        tensors, info = book.load(np_rng)
        agent.load(tensors, info)
    n, t_len, a_dim, f_dim = (
        config.num_envs,
        cfg.rollout_steps,
        policy.action_dim,
        policy.feature_dim,
    )
    env = env or ResidualVecEnv(
        policy,
        config.task,
        n,
        variant=config.variant,
        reward=config.reward,
        seed=int(np_rng.integers(2**31)),
        max_steps=config.episode_steps,
    )
    iteration = book.updates
    try:
        if not book.has_state() and config.eval_every_steps:
            book.evaluate(policy)  # the starting point: the base with a (near) zero residual
        raw = env.reset()
        while not book.should_stop():
            feats = torch.zeros(t_len, n, f_dim)
            samples = torch.zeros(t_len, n, a_dim)
            logps = torch.zeros(t_len, n)
            values = torch.zeros(t_len, n)
            rewards = torch.zeros(t_len, n)
            dones = torch.zeros(t_len, n)
            for t in range(t_len):
                policy.feature_stats.update(raw)
                x = policy.features(raw)
                with torch.no_grad():
                    mean, log_std = policy.actor.distribution(x)
                    u = mean + log_std.exp() * torch.randn_like(mean)
                    logps[t] = gaussian_log_prob(u, mean, log_std)
                    values[t] = agent.value(x)
                feats[t], samples[t] = x, u
                result = env.step(u.clamp(-1, 1).numpy())
                book.record(result)
                done = result.terminated | result.truncated
                reward_np = result.reward.astype(np.float64)
                if cfg.normalize_reward:
                    reward_np = agent.returns(reward_np, done)
                reward = torch.as_tensor(reward_np, dtype=torch.float32)
                if result.truncated.any():  # bootstrap the cut-off episodes from V(last obs)
                    cut = torch.as_tensor(result.truncated)
                    with torch.no_grad():
                        v_last = agent.value(policy.features(result.final_raw_features))
                    reward = torch.where(cut, reward + cfg.gamma * v_last, reward)
                rewards[t], dones[t] = reward, torch.as_tensor(done, dtype=torch.float32)
                raw = result.raw_features
            with torch.no_grad():
                next_value = agent.value(policy.features(raw))
            advantages, returns = _gae(
                rewards, values, dones, next_value, cfg.gamma, cfg.gae_lambda
            )
            warmup = iteration < cfg.value_warmup_iters
            stats = _update(agent, feats, samples, logps, advantages, returns, warmup, np_rng)
            iteration += 1
            book.updates = iteration
            book.report(
                {
                    **stats,
                    "std": float(policy.actor.distribution(feats[0])[1].exp().mean().detach()),
                }
            )
            if book.due_eval():
                book.evaluate(policy)
            if book.due_checkpoint():
                _save(book, agent, np_rng)
        _save(book, agent, np_rng)
        book.report({}, force=True)
    finally:
        env.close()
    return book


def _save(book: RunBook, agent: PPOAgent, np_rng: np.random.Generator) -> None:
    tensors, info = agent.state()
    book.save(agent.policy, tensors, info, np_rng)
    book.plot()


def _gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation; ``dones[t]`` ends the episode after step ``t``."""
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        nxt = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * nxt * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return advantages, advantages + values


def _update(
    agent: PPOAgent,
    feats: torch.Tensor,
    samples: torch.Tensor,
    logps: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    warmup: bool,
    np_rng: np.random.Generator,
) -> dict[str, float]:
    cfg = agent.cfg
    actor = agent.policy.actor
    x, u = feats.flatten(0, 1), samples.flatten(0, 1)
    old_logp, adv, ret = logps.flatten(), advantages.flatten(), returns.flatten()
    size = x.shape[0]
    mb = max(1, size // cfg.minibatches)
    kl = clipfrac = pg_loss = v_loss = 0.0
    for _ in range(cfg.epochs):
        order = torch.as_tensor(np_rng.permutation(size))
        for start in range(0, size, mb):
            idx = order[start : start + mb]
            value = agent.value(x[idx])
            v_loss_t = 0.5 * ((value - ret[idx]) ** 2).mean()
            agent.critic_opt.zero_grad()
            v_loss_t.backward()
            nn.utils.clip_grad_norm_(agent.critic.parameters(), cfg.max_grad_norm)
            agent.critic_opt.step()
            v_loss = float(v_loss_t.detach())
            if warmup:
                continue
            mean, log_std = actor.distribution(x[idx])
            logp = gaussian_log_prob(u[idx], mean, log_std)
            ratio = (logp - old_logp[idx]).exp()
            a = adv[idx]
            a = (a - a.mean()) / (a.std() + 1e-8)
            pg = -torch.min(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
            entropy = gaussian_entropy(log_std).mean()
            loss = pg - cfg.ent_coef * entropy
            agent.actor_opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(actor.parameters(), cfg.max_grad_norm)
            agent.actor_opt.step()
            with torch.no_grad():
                log_ratio = logp - old_logp[idx]
                kl = float(((log_ratio.exp() - 1) - log_ratio).mean())
                clipfrac = float(((ratio - 1).abs() > cfg.clip).float().mean())
            pg_loss = float(pg.detach())
        if not warmup and cfg.target_kl and kl > cfg.target_kl:
            break
    return {"pg_loss": pg_loss, "v_loss": v_loss, "kl": kl, "clipfrac": clipfrac}

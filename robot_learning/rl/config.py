"""Typed configs for residual RL runs (what ``robot-learning rl`` builds from its flags)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from robot_learning.rl.residual_policy import ResidualConfig
from robot_learning.sim.rewards import REWARDS

ALGOS = ("ppo", "sac")


@dataclass
class PPOConfig:
    """On-policy residual PPO (ResiP): GAE, clipped objective, value warm-up."""

    rollout_steps: int = 64  # per env, per iteration
    epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    lr_actor: float = 3e-4
    lr_critic: float = 1e-3
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    target_kl: float = 0.05  # stop the epoch loop early beyond this (0: never)
    value_warmup_iters: int = 3  # iterations that train only the critic
    normalize_reward: bool = True
    critic_hidden: tuple[int, ...] = (256, 256)


@dataclass
class SACConfig:
    """Off-policy residual SAC (ResFiT / RLPD): LayerNorm Q ensemble, 50/50 demo batches."""

    batch_size: int = 256
    updates_per_step: float = 0.5  # gradient updates per collected transition (UTD ratio)
    gamma: float = 0.99
    tau: float = 0.005
    lr: float = 3e-4
    num_q: int = 2
    buffer_size: int = 200_000
    learning_starts: int = 2_000  # online transitions before the first update
    demo_fraction: float = 0.5
    init_alpha: float = 0.01
    target_entropy_scale: float = 1.0  # target entropy = -scale * action_dim
    # actor loss + penalty * |deterministic residual|^2: the residual leaves zero (the base) only
    # where the critic's gain outweighs it, so critic noise cannot walk a delta-action residual
    # to a constant offset that integrates into drift (see docs/rl.md for when it helps)
    residual_penalty: float = 0.0
    critic_hidden: tuple[int, ...] = (256, 256)


@dataclass
class RLConfig:
    task: str = "insert"
    algo: str = "ppo"
    variant: str = "train"
    reward: str = "sparse"
    num_envs: int = 8
    episode_steps: int | None = None  # time limit of training episodes (None: the task's)
    total_env_steps: int = 1_000_000
    budget_minutes: float = 60.0
    seed: int = 0
    checkpoint_minutes: float = 5.0
    report_seconds: float = 30.0
    eval_every_steps: int = 0  # 0: only at the end
    eval_episodes: int = 20
    eval_seed: int = 100_000
    demos: str | None = None  # demonstration store (SAC mixes it into every batch)
    residual: ResidualConfig = field(default_factory=ResidualConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sac: SACConfig = field(default_factory=SACConfig)

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}; valid: {', '.join(ALGOS)}")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; valid: {', '.join(REWARDS)}")
        if self.algo == "sac" and self.reward != "sparse" and self.sac.demo_fraction > 0:
            raise ValueError(
                f"--reward {self.reward} with sac: the demonstration part of each batch carries "
                "the sparse task reward (the store keeps no shaping), so online transitions must "
                "too; use --reward sparse, or train online only (--set sac.demo_fraction=0)"
            )
        if self.algo == "sac" and self.sac.demo_fraction > 0 and not self.demos:
            raise ValueError(
                "--algo sac needs --demos STORE (demonstrations fill "
                f"{self.sac.demo_fraction:.0%} of each batch), or --set sac.demo_fraction=0"
            )
        if self.sac.residual_penalty < 0:
            raise ValueError(f"sac.residual_penalty must be >= 0, got {self.sac.residual_penalty}")
        if not 0 <= self.sac.demo_fraction < 1:
            raise ValueError(f"sac.demo_fraction must be in [0, 1), got {self.sac.demo_fraction}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        if self.episode_steps is not None and self.episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {self.episode_steps}")
        if self.budget_minutes <= 0 or self.total_env_steps < 1:
            raise ValueError("budget_minutes and total_env_steps must be positive")
        self.residual.validate()

    def apply_task_defaults(self) -> None:
        """Fill what was left to the task: the residual's fine scales (its precision scales)."""
        if self.residual.fine_scales is None:
            from robot_learning.sim.tasks import TASKS

            task = TASKS.get(self.task)
            self.residual.fine_scales = dict(getattr(task, "precision_scales", {}))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["residual"] = self.residual.to_json()
        return out

    def override(self, key: str, text: str) -> None:
        """Set ``section.field`` (``ppo``, ``sac``, ``residual``) from text, keeping its type."""
        section_name, _, name = key.partition(".")
        sections: dict[str, Any] = {"ppo": self.ppo, "sac": self.sac, "residual": self.residual}
        if section_name not in sections or not name:
            raise ValueError(
                f"--set {key}: expected SECTION.FIELD with SECTION one of {', '.join(sections)}"
            )
        section = sections[section_name]
        fields = {f.name: f for f in dataclasses.fields(section)}
        if name not in fields:
            raise ValueError(
                f"--set {key}: unknown field {name!r}; {section_name} has: {', '.join(fields)}"
            )
        current = getattr(section, name)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false"):
                    raise ValueError("expected true or false")
                value: Any = text.lower() == "true"
            elif isinstance(current, tuple):
                value = tuple(int(v) for v in text.split(",") if v)
            elif name == "fine_scales":
                value = None if text.lower() == "none" else _parse_scales(text)
            elif current is None:
                value = None if text.lower() == "none" else int(text)
            else:
                value = type(current)(text)
        except ValueError as exc:
            raise ValueError(f"--set {key}={text}: {exc}") from None
        setattr(section, name, value)


def _parse_scales(text: str) -> dict[str, float]:
    """``key:scale,key:scale`` (empty: none) as a dict."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, scale = item.partition(":")
        if not sep or not key:
            raise ValueError(f"expected KEY:SCALE[,KEY:SCALE...], got {item!r}")
        out[key.strip()] = float(scale)
    return out

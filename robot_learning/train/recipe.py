"""Recipes: one YAML file names the policy config, the training schedule and periodic evaluation.

Why typed: ``policies/<name>.yaml`` is loaded into dataclasses, so a misspelt key fails with the
list of valid keys, and the full resolved recipe is stored in every checkpoint's ``config.json``
(what was trained is never ambiguous).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robot_learning.policies.diffusion_config import DiffusionConfig, checked_fields


@dataclass
class TrainConfig:
    """Optimisation schedule; ``budget_minutes`` stops training early (the recipe's CPU budget)."""

    steps: int = 10000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 200
    ema_power: float = 0.75
    ema_max_decay: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 0  # 0: torch's default
    budget_minutes: float = 0.0  # 0: no wall-clock limit
    log_every: int = 50
    checkpoint_every: int = 1000
    val_episodes: int = 0  # episodes held out for a validation loss (0: none)
    loader: str = "memory"  # memory | workers (a DataLoader over WindowDataset)
    workers: int = 2


@dataclass
class EvalConfig:
    """Periodic evaluation in sim while training (``every`` 0 disables it)."""

    task: str = ""
    every: int = 0
    episodes: int = 20
    num_envs: int = 2
    variant: str = "default"
    final_episodes: int = 0  # evaluate the final checkpoint with this many episodes (0: skip)
    # how chunks are joined when this recipe's checkpoints are evaluated: rtc | ensemble | naive
    # (``robot-learning eval`` uses it unless --execution is given)
    execution: str = "rtc"

    def __post_init__(self) -> None:
        from robot_learning.serving.executor import EXECUTION_MODES

        if self.execution not in EXECUTION_MODES:
            raise ValueError(
                f"eval.execution {self.execution!r} is unknown; valid: {', '.join(EXECUTION_MODES)}"
            )


@dataclass
class Recipe:
    name: str
    policy_type: str = "diffusion"
    description: str = ""
    budget_note: str = ""
    policy: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(obj: dict[str, Any], name: str = "recipe") -> Recipe:
        top = checked_fields(Recipe, {"name": name, **obj}, "recipe")
        if top.get("policy_type", "diffusion") != "diffusion":
            raise ValueError(f"unknown policy_type {top['policy_type']!r}; valid: diffusion")
        return Recipe(
            name=str(top["name"]),
            policy_type=str(top.get("policy_type", "diffusion")),
            description=str(top.get("description", "")),
            budget_note=str(top.get("budget_note", "")),
            policy=DiffusionConfig.from_json(dict(top.get("policy") or {})),
            train=TrainConfig(**checked_fields(TrainConfig, dict(top.get("train") or {}), "train")),
            eval=EvalConfig(**checked_fields(EvalConfig, dict(top.get("eval") or {}), "eval")),
        )

    @staticmethod
    def load(path: str | Path) -> Recipe:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"recipe {path} does not exist")
        try:
            obj = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"recipe {path} is not valid YAML: {exc}") from None
        if not isinstance(obj, dict):
            raise ValueError(
                f"recipe {path} must be a mapping of sections, got {type(obj).__name__}"
            )
        try:
            return Recipe.from_dict(obj, name=path.stem)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"recipe {path}: {exc}") from None

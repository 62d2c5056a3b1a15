"""Bookkeeping shared by PPO and SAC runs: progress, curves, budget, checkpoints, evaluation.

A run directory holds:
- ``policy/``: the combined residual policy (servable; rewritten at every checkpoint);
- ``rl_state/``: what ``--resume`` needs (networks, optimizers, normalizers, replay, counters,
  RNG), safetensors + JSON, ``state.json`` written last so a crash keeps the previous state;
- ``curve.jsonl`` (one point per report or evaluation) and ``curve.png``;
- ``rl_config.json``: the run's settings (a resume must not change them).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from robot_learning.policies.base import Policy
from robot_learning.policies.checkpoint import (
    cpu_tensors,
    staged_dir,
    whole_dir,
    write_json_atomic,
)
from robot_learning.rl.config import RLConfig
from robot_learning.rl.curves import CURVE_FILE, plot_learning_curves, read_curve
from robot_learning.rl.residual_env import StepResult
from robot_learning.rl.residual_policy import ResidualPolicy, save_residual

LOG = logging.getLogger(__name__)
STATE_DIR = "rl_state"
POLICY_DIR = "policy"
CONFIG_FILE = "rl_config.json"
# settings that may differ on --resume (how long and how often), everything else must match
RESUMABLE = {"total_env_steps", "budget_minutes", "checkpoint_minutes", "report_seconds"}


def success_summary(policy: Policy, config: RLConfig, variant: str) -> dict[str, Any]:
    """``config.eval_episodes`` seeded episodes through the evaluation harness (the safety layer
    included): success rate with its 95% interval."""
    from robot_learning.eval.rollout import evaluate

    result = evaluate(
        policy,
        config.task,
        config.eval_episodes,
        variant=variant,
        seed=config.eval_seed,
        num_envs=config.num_envs,
        videos=0,
    )
    return {
        "variant": variant,
        "episodes": result.episodes,
        "successes": result.successes,
        "success_rate": result.success_rate,
        "success_ci95_low": result.ci95_low,
        "success_ci95_high": result.ci95_high,
    }


class RunBook:
    """Counters, the learning curve and the stop rule of one RL run."""

    def __init__(self, out: Path, config: RLConfig, resume: bool) -> None:
        self.out = out
        self.config = config
        self.env_steps = 0
        self.updates = 0
        self.episodes = 0
        self.successes = 0
        self.prior_wall_s = 0.0
        self._window: list[bool] = []
        self._start = time.monotonic()
        self._last_report = self._start
        self._last_checkpoint = self._start
        self._next_eval = config.eval_every_steps or None
        out.mkdir(parents=True, exist_ok=True)
        self._check_config(resume)

    def _check_config(self, resume: bool) -> None:
        path = self.out / CONFIG_FILE
        current = json.loads(json.dumps(self.config.to_json()))  # tuples compare as lists
        if resume and path.is_file():
            saved = json.loads(path.read_text())
            changed = [
                k
                for k in sorted(set(saved) | set(current))
                if k not in RESUMABLE and saved.get(k) != current.get(k)
            ]
            if changed:
                raise ValueError(
                    f"{self.out}: --resume with different settings ({', '.join(changed)}); use "
                    "the original ones or a new --out"
                )
        elif not resume and self.has_state():
            raise FileExistsError(
                f"{self.out} already holds an RL run; pass --resume to continue it or choose "
                "another --out"
            )
        write_json_atomic(path, current)

    # ---- progress ------------------------------------------------------------------------------
    @property
    def wall_s(self) -> float:
        return self.prior_wall_s + time.monotonic() - self._start

    def record(self, result: StepResult) -> None:
        self.env_steps += len(result.reward)
        done = result.terminated | result.truncated
        for ok in result.success[done]:
            self._window.append(bool(ok))
            self.episodes += 1
            self.successes += int(ok)

    def should_stop(self) -> bool:
        return (
            self.env_steps >= self.config.total_env_steps
            or self.wall_s >= self.config.budget_minutes * 60
        )

    def report(self, extra: dict[str, float], force: bool = False) -> None:
        """A progress line and a training-curve point every ``report_seconds``."""
        now = time.monotonic()
        if not force and now - self._last_report < self.config.report_seconds:
            return
        self._last_report = now
        window, self._window = self._window, []
        rate = float(np.mean(window)) if window else float("nan")
        point = {
            "kind": "train",
            "env_steps": self.env_steps,
            "wall_s": round(self.wall_s, 1),
            "episodes": len(window),
            "success_rate": rate,
            **{k: round(float(v), 5) for k, v in extra.items()},
        }
        self._append(point)
        budget = self.config.budget_minutes * 60
        LOG.info(
            "%s %d/%d env steps, %.1f/%.0f min: success %s over %d episodes, %s",
            self.config.algo,
            self.env_steps,
            self.config.total_env_steps,
            self.wall_s / 60,
            budget / 60,
            "n/a" if not window else f"{rate:.0%}",
            len(window),
            ", ".join(f"{k} {v:.4g}" for k, v in extra.items()),
        )

    def _append(self, point: dict[str, Any]) -> None:
        with (self.out / CURVE_FILE).open("a") as f:
            f.write(json.dumps(point) + "\n")

    def plot(self) -> Path | None:
        return plot_learning_curves(
            [(self.config.algo, read_curve(self.out))], self.out / "curve.png"
        )

    # ---- evaluation ----------------------------------------------------------------------------
    def due_eval(self) -> bool:
        if self._next_eval is None or self.env_steps < self._next_eval:
            return False
        self._next_eval += self.config.eval_every_steps
        return True

    def evaluate(self, policy: ResidualPolicy, variant: str | None = None) -> dict[str, Any]:
        """Evaluate the combined policy (deterministic residual) and add it to the curve."""
        variant = variant or self.config.variant
        was_training = policy.actor.training
        policy.eval()
        try:
            result = success_summary(policy, self.config, variant)
        finally:
            policy.actor.train(was_training)
        point = {
            "kind": "eval",
            "env_steps": self.env_steps,
            "wall_s": round(self.wall_s, 1),
            **result,
        }
        self._append(point)
        LOG.info(
            "eval (%s) at %d env steps: %d/%d successes",
            variant,
            self.env_steps,
            result["successes"],
            result["episodes"],
        )
        return point

    # ---- checkpoints ---------------------------------------------------------------------------
    def due_checkpoint(self) -> bool:
        now = time.monotonic()
        if now - self._last_checkpoint < self.config.checkpoint_minutes * 60:
            return False
        self._last_checkpoint = now
        return True

    def save(
        self,
        policy: ResidualPolicy,
        tensors: dict[str, torch.Tensor],
        info: dict[str, Any],
        np_rng: np.random.Generator,
        extra_files: Callable[[Path], None] | None = None,
    ) -> None:
        """Write the servable policy and the resume state (swapped in whole, see ``staged_dir``).

        A base built in code (no checkpoint directory to copy) gets no servable policy.
        """
        if policy.base_dir is not None:
            save_residual(
                policy,
                self.out / POLICY_DIR,
                extra={"rl": {"algo": self.config.algo, "env_steps": self.env_steps}},
            )
        counters = {
            "env_steps": self.env_steps,
            "updates": self.updates,
            "episodes": self.episodes,
            "successes": self.successes,
            "wall_s": self.wall_s,
            "next_eval": self._next_eval,
        }
        with staged_dir(self.out / STATE_DIR) as directory:
            save_file(cpu_tensors(tensors), str(directory / "tensors.safetensors"))
            save_file({"torch": torch.get_rng_state()}, str(directory / "rng.safetensors"))
            if extra_files is not None:
                extra_files(directory)
            write_json_atomic(
                directory / "state.json",
                {"counters": counters, "numpy_rng": np_rng.bit_generator.state, **info},
            )
        LOG.info("checkpoint at %d env steps -> %s", self.env_steps, self.out)

    def load(
        self,
        np_rng: np.random.Generator,
        extra_files: Callable[[Path], None] | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Restore the counters and RNGs; ``extra_files`` reads what ``save`` was given."""
        directory = whole_dir(self.out / STATE_DIR)
        if directory is None:
            raise FileNotFoundError(f"{self.out} holds no RL state to resume")
        state = json.loads((directory / "state.json").read_text())
        counters = state.pop("counters")
        self.env_steps = int(counters["env_steps"])
        self.updates = int(counters["updates"])
        self.episodes = int(counters["episodes"])
        self.successes = int(counters["successes"])
        self.prior_wall_s = float(counters["wall_s"])
        self._next_eval = counters.get("next_eval")
        np_rng.bit_generator.state = state.pop("numpy_rng")
        torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch"])
        tensors = load_file(str(directory / "tensors.safetensors"))
        if extra_files is not None:
            extra_files(directory)
        LOG.info("resuming at %d env steps (%.1f min so far)", self.env_steps, self.wall_s / 60)
        return tensors, state

    def has_state(self) -> bool:
        return whole_dir(self.out / STATE_DIR) is not None

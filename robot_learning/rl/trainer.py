"""One entry point for residual RL runs: train with PPO or SAC, then evaluate and summarize."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from robot_learning.policies.checkpoint import write_json_atomic
from robot_learning.rl.config import RLConfig
from robot_learning.rl.residual_policy import ResidualPolicy
from robot_learning.rl.run import POLICY_DIR, success_summary

LOG = logging.getLogger(__name__)
SUMMARY_FILE = "summary.json"
REAL_PROXY = "real-proxy"


def train(config: RLConfig, policy: ResidualPolicy, out: Path, resume: bool) -> dict[str, Any]:
    """Train, then evaluate base and combined policy on the training variant and real-proxy."""
    config.validate()
    if config.algo == "ppo":
        from robot_learning.rl.ppo import train_ppo

        book = train_ppo(config, policy, out, resume)
    else:
        from robot_learning.rl.sac import train_sac

        book = train_sac(config, policy, out, resume)
    evals: dict[str, Any] = {}
    for variant in dict.fromkeys((config.variant, REAL_PROXY)):
        evals[f"base_{variant}"] = success_summary(policy.base, config, variant)
        evals[f"residual_{variant}"] = book.evaluate(policy, variant)
    book.plot()
    summary = {
        "task": config.task,
        "algo": config.algo,
        "policy": str(out / POLICY_DIR),
        "env_steps": book.env_steps,
        "wall_s": round(book.wall_s, 1),
        "updates": book.updates,
        "training_episodes": book.episodes,
        "training_success_rate": book.successes / max(book.episodes, 1),
        "eval": evals,
        "curve_png": str(out / "curve.png"),
    }
    write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def summarize(summary: dict[str, Any]) -> str:
    lines = [
        f"rl {summary['algo']} on {summary['task']}: {summary['env_steps']} env steps in "
        f"{summary['wall_s'] / 60:.1f} min ({summary['training_episodes']} training episodes)"
    ]
    for name, e in summary["eval"].items():
        lines.append(
            f"  {name:<24} {e['success_rate']:6.1%}  ({e['successes']}/{e['episodes']}; 95% CI "
            f"{e['success_ci95_low']:.1%}-{e['success_ci95_high']:.1%})"
        )
    lines.append(f"  policy  {summary['policy']}")
    lines.append(f"  curve   {summary['curve_png']}")
    return "\n".join(lines)


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    return dict(json.loads((Path(run_dir) / SUMMARY_FILE).read_text()))

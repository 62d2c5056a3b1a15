"""Learning curves of residual RL runs: env steps against success rate, several runs on one PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CURVE_FILE = "curve.jsonl"


def read_curve(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / CURVE_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_learning_curves(
    runs: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    path: str | Path,
    baseline: float | None = None,
) -> Path | None:
    """Success rate of training episodes (line) and of deterministic evals (markers with CI)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in runs:
        train = [p for p in points if p.get("kind") == "train" and p.get("episodes", 0) > 0]
        line = ax.plot(
            [p["env_steps"] for p in train],
            [p["success_rate"] for p in train],
            label=f"{label}: training episodes",
        )[0]
        evals = [p for p in points if p.get("kind") == "eval"]
        if evals:
            xs = [p["env_steps"] for p in evals]
            ys = [p["success_rate"] for p in evals]
            err = [
                [y - p["success_ci95_low"] for y, p in zip(ys, evals)],
                [p["success_ci95_high"] - y for y, p in zip(ys, evals)],
            ]
            ax.errorbar(xs, ys, yerr=err, fmt="o", color=line.get_color(), label=f"{label}: eval")
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label="base policy")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

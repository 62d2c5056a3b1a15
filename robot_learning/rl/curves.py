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


def pooled(points: Sequence[dict[str, Any]], min_episodes: int) -> list[dict[str, Any]]:
    """Training reports merged until each holds ``min_episodes`` finished episodes."""
    out: list[dict[str, Any]] = []
    episodes = successes = 0.0
    for p in points:
        n = p.get("episodes", 0)
        if not n:
            continue
        episodes += n
        successes += p["success_rate"] * n
        if episodes >= min_episodes:
            out.append({"env_steps": p["env_steps"], "success_rate": successes / episodes})
            episodes = successes = 0.0
    return out


def plot_learning_curves(
    runs: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    path: str | Path,
    baseline: float | None = None,
    min_episodes: int = 20,
) -> Path | None:
    """Success rate of training episodes (line; consecutive reports pooled until they hold
    ``min_episodes`` episodes) and of deterministic evals (markers with a 95% CI)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, points in runs:
        train = pooled([p for p in points if p.get("kind") == "train"], min_episodes)
        line = ax.plot(
            [p["env_steps"] for p in train],
            [p["success_rate"] for p in train],
            label=f"{label}: training episodes",
        )[0]
        evals = [p for p in points if p.get("kind") == "eval"]
        for variant, marker in (("real-proxy", "x"), (None, "o")):
            chosen = [
                p for p in evals if (p.get("variant") == "real-proxy") == (variant == "real-proxy")
            ]
            if not chosen:
                continue
            xs = [p["env_steps"] for p in chosen]
            ys = [p["success_rate"] for p in chosen]
            err = [
                [y - p["success_ci95_low"] for y, p in zip(ys, chosen)],
                [p["success_ci95_high"] - y for y, p in zip(ys, chosen)],
            ]
            name = "eval, real-proxy" if variant else "eval"
            ax.errorbar(
                xs, ys, yerr=err, fmt=marker, color=line.get_color(), label=f"{label}: {name}"
            )
    if baseline is not None:
        ax.axhline(
            baseline, color="grey", linestyle="--", label="base + zero residual (eval at step 0)"
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("success rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

"""Loss and success-rate curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(
    metrics: list[dict[str, Any]], evals: list[dict[str, Any]], path: Path
) -> Path | None:
    """Training loss (and validation loss) against step; success rate with its 95% CI if any."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ncols = 2 if evals else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
    ax = axes[0][0]
    steps = [m["step"] for m in metrics if "loss" in m]
    ax.plot(steps, [m["loss"] for m in metrics if "loss" in m], label="train")
    val = [(m["step"], m["val_loss"]) for m in metrics if m.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    if evals:
        ax = axes[0][1]
        s = [e["step"] for e in evals]
        rate = [e["success_rate"] for e in evals]
        ax.plot(s, rate, marker="o")
        ax.fill_between(
            s,
            [e["success_ci95_low"] for e in evals],
            [e["success_ci95_high"] for e in evals],
            alpha=0.2,
        )
        ax.set_ylim(0, 1)
        ax.set_xlabel("step")
        ax.set_ylabel("success rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

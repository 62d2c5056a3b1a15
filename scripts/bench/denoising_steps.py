"""Success rate and chunk latency of one trained policy against the number of denoising steps.

Why: the step count is the main latency knob of a diffusion policy. This loads a checkpoint
once per step count (``inference_steps`` override; the weights are the same), evaluates the
same seeded episodes in the MuJoCo sim, and writes a JSON table and a PNG plot (success rate
with its 95% CI, and latency p50/p99, against steps on a log axis).

    .venv/bin/python scripts/bench/denoising_steps.py --policy runs/lift_image --task lift \
        --episodes 50 --steps 1,2,4,8,16,100 --out docs/img/denoising_steps_lift.png
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch


def machine() -> str:
    """One line describing the CPU, cores and torch threads (the latency bench's description)."""
    from policy_latency_vs_lerobot import machine_info  # same directory

    info = machine_info(torch.get_num_threads())
    return (
        f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} "
        f"({info['torch_threads']} threads), Python {info['python']}"
    )


def plot(rows: list[dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["steps"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    rate = [r["success_rate"] for r in rows]
    err = [
        [r["success_rate"] - r["success_ci95_low"] for r in rows],
        [r["success_ci95_high"] - r["success_rate"] for r in rows],
    ]
    ax.errorbar(steps, rate, yerr=err, marker="o", color="tab:blue", capsize=3)
    ax.set_xscale("log")
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("denoising steps")
    ax.set_ylabel("success rate (95% CI)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["latency_ms_p50"] for r in rows], marker="s", color="tab:red", label="p50")
    ax2.plot(steps, [r["latency_ms_p99"] for r in rows], ls="--", color="tab:red", label="p99")
    ax2.set_yscale("log")
    ax2.set_ylabel("chunk latency, ms", color="tab:red")
    ax2.legend(loc="center right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", required=True, help="checkpoint directory")
    parser.add_argument("--task", required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--steps", default="1,2,4,8,16,100", help="comma-separated step counts")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=100_000, help="episode k uses seed SEED+k")
    parser.add_argument("--out", type=Path, default=Path("denoising_steps.png"), help="plot path")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from robot_learning.eval.rollout import evaluate
    from robot_learning.policies import load_policy

    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        policy = load_policy(args.policy, inference_steps=steps)
        result = evaluate(
            policy,
            args.task,
            args.episodes,
            variant=args.variant,
            num_envs=args.num_envs,
            seed=args.seed,
        )
        row = {
            "steps": steps,
            "success_rate": result.success_rate,
            "success_ci95_low": result.ci95_low,
            "success_ci95_high": result.ci95_high,
            "latency_ms_p50": result.latency_ms_p50,
            "latency_ms_p99": result.latency_ms_p99,
            "episode_len_mean": result.episode_len_mean,
        }
        rows.append(row)
        if not args.json:
            print(
                f"steps {steps:4d}  success {100 * row['success_rate']:5.1f}% "
                f"[{100 * row['success_ci95_low']:.0f}-{100 * row['success_ci95_high']:.0f}]  "
                f"latency p50 {row['latency_ms_p50']:7.1f} ms  p99 {row['latency_ms_p99']:7.1f} ms",
                flush=True,
            )
    name = Path(args.policy).name
    title = f"{args.task} ({args.variant}), {args.episodes} episodes per point: {name}"
    plot(rows, title, args.out)
    summary = {
        "task": args.task,
        "variant": args.variant,
        "episodes": args.episodes,
        "policy": str(args.policy),
        "machine": machine(),
        "rows": rows,
        "plot": str(args.out),
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"machine: {summary['machine']}\nplot: {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Residual RL runs side by side: one learning-curve figure and a table of final evaluations.

Why: PPO and the off-policy learner are compared on the same axes (env steps against success)
against the base policy's success, and every figure in the table comes from the runs' own
``summary.json`` (written by ``robot-learning rl``), so the table is reproducible from the runs.

Usage:
  .venv/bin/python scripts/bench/rl_compare.py RUN_DIR [RUN_DIR ...] --out curve.png [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from robot_learning.rl.curves import plot_learning_curves, read_curve  # noqa: E402
from robot_learning.rl.trainer import load_summary  # noqa: E402


def rows(runs: list[Path]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        if not (run / "summary.json").is_file():
            continue  # an interrupted run: its curve only
        summary = load_summary(run)
        for name, e in summary["eval"].items():
            out.append(
                {
                    "run": run.name,
                    "algo": summary["algo"],
                    "policy": name.split("_", 1)[0],
                    "variant": e["variant"],
                    "successes": e["successes"],
                    "episodes": e["episodes"],
                    "success_rate": e["success_rate"],
                    "ci95": [e["success_ci95_low"], e["success_ci95_high"]],
                    "env_steps": summary["env_steps"],
                    "wall_min": round(summary["wall_s"] / 60, 1),
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of 'robot-learning rl'")
    parser.add_argument("--out", type=Path, required=True, help="the learning-curve PNG")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "curve.jsonl").is_file()]
    if missing:
        parser.error(f"no curve.jsonl in {', '.join(missing)} (not a 'robot-learning rl' run)")
    table = rows(args.runs)
    starts = [
        p for r in args.runs for p in read_curve(r) if p["kind"] == "eval" and p["env_steps"] == 0
    ]
    baseline = starts[0]["success_rate"] if starts else None  # the zero-residual start
    plot_learning_curves(
        [(f"{r.name}", read_curve(r)) for r in args.runs], args.out, baseline=baseline
    )
    if args.json:
        print(json.dumps({"rows": table, "curve_png": str(args.out)}))
        return 0
    print(f"{'run':<18}{'policy':<10}{'variant':<12}{'success':>9}  95% CI        env steps  min")
    for r in table:
        low, high = r["ci95"]
        print(
            f"{r['run']:<18}{r['policy']:<10}{r['variant']:<12}{r['success_rate']:>8.0%} "
            f" {low:4.0%}-{high:4.0%}  {r['env_steps']:>10}  {r['wall_min']:>4}"
        )
    print(f"curve: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""How far a bounded per-step residual can lift an ``insert`` base: a hand-written servo.

Why: when residual RL stalls, this separates "the residual cannot express the fix" from "RL
does not find it". The servo is ten lines: near the rim, push the peg's axis toward the hole's
axis (gain ``--gain`` per step, in the world frame), through :meth:`ResidualPolicy.combine`,
so the residual bound (``--residual-scale``) and the clip to the action limits are the same
as for a learned residual. The base runs as in RL: re-planned every step with ``--base-steps``
denoising steps. Both policies see the same seeded episodes through the evaluation harness.

``--off action_noise_std,obs_noise_std,latency_steps`` switches those terms of ``insert``'s
training randomization off (in every env worker), to attribute the base's losses to them.

Usage:
  .venv/bin/python scripts/bench/insert_servo_residual.py --base BASE_DIR [--episodes 50]
      [--variant train] [--seed 100000] [--gain 0.5] [--num-envs 16] [--off TERMS] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from robot_learning.rl.residual_policy import ResidualConfig, ResidualPolicy  # noqa: E402
from robot_learning.sim.kinematics import quat_yaw  # noqa: E402
from robot_learning.sim.tasks.insert import InsertTask  # noqa: E402

OFF_ENV = "INSERT_BENCH_RANDOMIZATION_OFF"  # read again by each spawned env worker on import


def switch_off(terms: list[str]) -> None:
    """Zero these ranges of ``insert``'s training randomization in this process."""
    InsertTask.train_ranges = dataclasses.replace(
        InsertTask.train_ranges, **{term: (0.0, 0.0) for term in terms}
    )


if os.environ.get(OFF_ENV):
    switch_off(os.environ[OFF_ENV].split(","))

NEAR_RIM = (-0.02, 0.03)  # peg bottom height above the rim (m) where the servo acts
NEAR_AXIS = 0.012  # peg axis within this of the hole axis (m)


class ServoResidual(ResidualPolicy):
    """The base plus a proportional lateral servo on ``peg_in_hole`` instead of a network."""

    gain = 0.5
    zero = False  # True: the zero residual (S0), through the same code path

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        self.check_batch(obs)
        base = self.base_chunk(obs)[:, 0]
        residual = np.zeros_like(base)
        if not self.zero:
            residual[:, :2] = self.servo(obs) / self.bound[:2]
        return self.combine(base, np.clip(residual, -1.0, 1.0))[:, None, :]

    def servo(self, obs: Mapping[str, Any]) -> np.ndarray:
        """``-gain * (peg axis - hole axis)`` in world x, y, where the peg is at the rim."""
        peg = np.asarray(obs["peg_in_hole"], np.float64)[:, -1]
        hole_quat = np.asarray(obs["hole_quat"], np.float64)[:, -1]
        out = np.zeros((len(peg), 2))
        for i, (x, y, z) in enumerate(peg):
            if NEAR_RIM[0] < z < NEAR_RIM[1] and np.hypot(x, y) < NEAR_AXIS:
                yaw = quat_yaw(hole_quat[i])
                c, s = np.cos(yaw), np.sin(yaw)
                out[i] = -self.gain * np.array([c * x - s * y, s * x + c * y])
        return out


def success(policy: ServoResidual, args: argparse.Namespace) -> dict[str, Any]:
    from robot_learning.eval.rollout import evaluate

    r = evaluate(
        policy,
        "insert",
        args.episodes,
        variant=args.variant,
        seed=args.seed,
        num_envs=args.num_envs,
        videos=0,
    )
    return {"successes": r.successes, "episodes": r.episodes, "success_rate": r.success_rate}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="an insert base policy checkpoint directory")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--variant", default="train")
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--gain", type=float, default=0.5, help="servo gain per control step")
    p.add_argument("--residual-scale", type=float, default=0.1)
    p.add_argument("--base-steps", type=int, default=4, help="the base's denoising steps")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--off", default="", help="randomization terms to switch off, comma-separated")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    terms = {f.name for f in dataclasses.fields(InsertTask.train_ranges)}
    off = [t for t in args.off.split(",") if t]
    if any(t not in terms for t in off):
        p.error(f"--off {args.off}: valid terms: {', '.join(sorted(terms))}")
    if off:
        switch_off(off)
        os.environ[OFF_ENV] = ",".join(off)  # env workers are spawned: they apply it on import

    import torch

    from robot_learning.policies import load_policy

    torch.set_num_threads(1)
    config = ResidualConfig(
        residual_scale=args.residual_scale, base_inference_steps=args.base_steps
    )
    policy = ServoResidual(load_policy(args.base), config, base_dir=args.base)
    if "peg_in_hole" not in policy.observation_spec:
        p.error(f"--base {args.base}: the base does not observe peg_in_hole")
    policy.gain = args.gain
    policy.zero = True
    zero = success(policy, args)
    policy.zero = False
    servo = success(policy, args)
    result = {
        "variant": args.variant,
        "off": off,
        "gain": args.gain,
        "zero_residual": zero,
        "servo": servo,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("zero_residual", "servo"):
            r = result[name]
            print(f"{name:14s} {r['successes']}/{r['episodes']} ({r['success_rate']:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

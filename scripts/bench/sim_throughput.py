"""Simulator throughput in one run: our env vs raw ``mj_step`` vs robosuite's Lift (Panda).

Why: the simulator must spend its time in physics, not Python (goal: state-only env at >= 0.5 of
raw ``mj_step`` on equal physics substeps), and camera observations must be cheap next to a peer
stack (goal: >= 5x robosuite's camera env). Measuring everything in one run on one machine keeps
the ratios honest when the machine is loaded.

What it runs:

* ``robot_learning.sim.bench.bench_task``: our env state-only, with one 96x96 'scene' camera, and
  raw ``mujoco.mj_step`` on the same compiled model.
* ``.venv-robosuite/bin/python scripts/bench/robosuite_lift.py --seconds S`` as a subprocess (its
  own venv: robosuite pins an older MuJoCo). The venv is created with
  ``scripts/bench/setup_robosuite_venv.sh`` when missing; ``--no-robosuite`` skips the peer.

Usage (repo root)::

    PYTHONPATH=. .venv/bin/python scripts/bench/sim_throughput.py --seconds 3 [--json]

Ratios: ``state_fraction_of_raw`` = env steps/s x substeps / mj_steps/s (equal physics work);
``camera_vs_robosuite_camera`` and ``state_vs_robosuite_state`` divide our env steps/s by
robosuite's (robosuite's camera figure is as shipped, with shadows; the no-shadow figure is
reported beside it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # runnable as a plain script from any working directory
    sys.path.insert(0, str(REPO))

LOG = logging.getLogger("sim_throughput")
ROBOSUITE_PY = REPO / ".venv-robosuite" / "bin" / "python"
ROBOSUITE_SCRIPT = REPO / "scripts" / "bench" / "robosuite_lift.py"
SETUP_SCRIPT = REPO / "scripts" / "bench" / "setup_robosuite_venv.sh"
GOAL_STATE_FRACTION = 0.5
GOAL_CAMERA_RATIO = 5.0
USER_MUJOCO_GL = os.environ.get("MUJOCO_GL")  # before robot_learning.sim sets its default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="wall seconds per measurement (default: 3)"
    )
    parser.add_argument("--task", default="lift", help="our task to measure (default: lift)")
    parser.add_argument("--seed", type=int, default=0, help="env and action seed (default: 0)")
    parser.add_argument(
        "--no-robosuite", action="store_true", help="skip the robosuite peer measurement"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds must be positive, got {args.seconds}")
    return args


def ensure_robosuite_venv() -> None:
    """Create ``.venv-robosuite`` with the setup script if its interpreter is missing."""
    if ROBOSUITE_PY.exists():
        return
    LOG.info("robosuite venv missing: running %s (this downloads ~1.3 GB once)", SETUP_SCRIPT)
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, stdout=sys.stderr)


def run_robosuite(seconds: float, seed: int) -> dict[str, Any]:
    """Run the robosuite peer benchmark in its venv and parse its one-line JSON."""
    ensure_robosuite_venv()
    cmd = [str(ROBOSUITE_PY), str(ROBOSUITE_SCRIPT), "--seconds", str(seconds), "--seed", str(seed)]
    LOG.info("robosuite Lift (Panda): %s", " ".join(cmd))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # keep our packages (newer MuJoCo users) out of robosuite's venv
    if USER_MUJOCO_GL is None:
        env.pop("MUJOCO_GL", None)  # let robosuite_lift.py probe egl -> osmesa itself
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=REPO)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"robosuite benchmark failed (rc={proc.returncode}):\n{tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("robosuite benchmark printed no JSON")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def compare(ours: dict[str, Any], peer: dict[str, Any] | None) -> dict[str, Any]:
    """The headline ratios and whether each goal is met."""
    out: dict[str, Any] = {
        "state_fraction_of_raw": ours["state_fraction_of_raw"],
        "state_fraction_of_raw_goal": GOAL_STATE_FRACTION,
        "state_fraction_of_raw_goal_met": ours["state_fraction_of_raw"] >= GOAL_STATE_FRACTION,
    }
    if peer is None:
        return out
    cam = ratio(ours["camera_steps_per_s"], peer["camera_steps_per_s"])
    out.update(
        camera_vs_robosuite_camera=cam,
        camera_vs_robosuite_camera_goal=GOAL_CAMERA_RATIO,
        camera_vs_robosuite_camera_goal_met=cam is not None and cam >= GOAL_CAMERA_RATIO,
        camera_vs_robosuite_camera_noshadow=ratio(
            ours["camera_steps_per_s"], peer.get("camera_noshadow_steps_per_s", 0.0)
        ),
        state_vs_robosuite_state=ratio(ours["state_steps_per_s"], peer["state_steps_per_s"]),
        robosuite_state_fraction_of_raw=ratio(
            peer["state_steps_per_s"] * peer["substeps_per_control_step"],
            peer["raw_mj_step_per_s"],
        ),
    )
    return out


def fmt(value: float | None, spec: str = ".1f") -> str:
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    ours, peer, ratios = report["ours"], report.get("robosuite"), report["ratios"]
    rows = [
        ("env state-only, steps/s", ours["state_steps_per_s"], peer and peer["state_steps_per_s"]),
        (
            "env + 96x96 camera, steps/s",
            ours["camera_steps_per_s"],
            peer and peer["camera_steps_per_s"],
        ),
        ("raw mj_step, steps/s", ours["mj_steps_per_s"], peer and peer["raw_mj_step_per_s"]),
        (
            "raw mj_step as env steps/s",
            ours["raw_env_steps_per_s"],
            peer and peer["raw_mj_equiv_control_steps_per_s"],
        ),
        (
            "physics substeps per env step",
            ours["substeps"],
            peer and peer["substeps_per_control_step"],
        ),
    ]
    print(f"{'':32} {'ours (' + ours['task'] + ', UR5e)':>20} {'robosuite Lift (Panda)':>24}")
    for label, a, b in rows:
        print(f"{label:32} {fmt(a):>20} {fmt(b) if peer else 'skipped':>24}")
    if peer is not None:
        print(
            f"{'  robosuite camera, no shadows':32} {'':>20} "
            f"{fmt(peer.get('camera_noshadow_steps_per_s')):>24}"
        )
    print()
    goal = "met" if ratios["state_fraction_of_raw_goal_met"] else "NOT met"
    frac = fmt(ratios["state_fraction_of_raw"], ".2f")
    print(
        f"ours state / raw mj_step (equal substeps): {frac}"
        f"  (goal >= {GOAL_STATE_FRACTION}: {goal})"
    )
    if peer is None:
        print(f"robosuite comparison skipped: {report.get('robosuite_skipped_reason', '')}")
        return
    goal = "met" if ratios["camera_vs_robosuite_camera_goal_met"] else "NOT met"
    print(
        f"ours camera / robosuite camera:            "
        f"{fmt(ratios['camera_vs_robosuite_camera'], '.2f')}x  (goal >= {GOAL_CAMERA_RATIO:g}x: "
        f"{goal}; vs robosuite without shadows: "
        f"{fmt(ratios['camera_vs_robosuite_camera_noshadow'], '.2f')}x)"
    )
    print(
        f"ours state / robosuite state:              "
        f"{fmt(ratios['state_vs_robosuite_state'], '.2f')}x"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="[sim_throughput] %(message)s"
    )
    for name in ("sim_throughput", "robot_learning"):
        logging.getLogger(name).setLevel(logging.INFO)
    from robot_learning.sim.bench import bench_task  # after sys.path; sets MUJOCO_GL default

    start = time.perf_counter()
    ours = bench_task(
        args.task, seconds=args.seconds, seed=args.seed, progress=lambda msg: LOG.info("%s", msg)
    )
    report: dict[str, Any] = {"seconds_per_measurement": args.seconds, "ours": ours}
    peer: dict[str, Any] | None = None
    if args.no_robosuite:
        report["robosuite_skipped_reason"] = "--no-robosuite"
    else:
        try:
            peer = run_robosuite(args.seconds, args.seed)
            report["robosuite"] = peer
        except (RuntimeError, OSError, subprocess.CalledProcessError, ValueError) as exc:
            LOG.error("robosuite peer benchmark unavailable: %s", exc)
            report["robosuite_skipped_reason"] = str(exc).splitlines()[0]
    report["ratios"] = compare(ours, peer)
    report["wall_s"] = time.perf_counter() - start
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

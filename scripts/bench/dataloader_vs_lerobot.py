#!/usr/bin/env python
"""Training-window throughput: our WindowDataset vs the real LeRobot (0.4.4) on the same data.

What it does, in one run:
  1. records N scripted ``sim:lift`` episodes (2 cameras, 96x96) into an episode store;
  2. exports it with ``export-lerobot`` in image mode (PNG columns) and video mode (H.264 MP4);
  3. checks both exports load in the real lerobot package with identical low-dim values
     (``lerobot_peer.py verify-export``);
  4. times DataLoader batches (batch 64, 2 workers, shuffled, after warm-up) of windows with
     ``n_obs_steps`` observations and ``horizon`` actions: ours from the store, LeRobot's
     ``LeRobotDataset`` with the equivalent ``delta_timestamps`` in image and video mode (in
     .venv-lerobot, via ``lerobot_peer.py bench``), and checks a few windows are the same;
  5. prints a table with ratios (``--json``: one JSON object).

Usage (after ``bash scripts/bench/setup_lerobot_venv.sh``):
  MUJOCO_GL=egl .venv/bin/python scripts/bench/dataloader_vs_lerobot.py [--episodes 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER = REPO_ROOT / "scripts" / "bench" / "lerobot_peer.py"
LEROBOT_PY = REPO_ROOT / ".venv-lerobot" / "bin" / "python"
LOG = logging.getLogger("bench.dataloader_vs_lerobot")


def record(path: Path, episodes: int, size: int, seed: int) -> dict[str, Any]:
    """Scripted lift demonstrations through the same robot/teleop/store path as ``collect``."""
    from drivers.registry import make_robot, make_teleop
    from drivers.robots.sim import SimRobot
    from drivers.teleop.scripted import ScriptedTeleop
    from robot_learning.data import EpisodeStore
    from robot_learning.specs import SpecDict

    t0 = time.perf_counter()
    robot = make_robot("sim:lift", cameras=("scene", "wrist"), image_size=(size, size))
    teleop = make_teleop("scripted", robot=robot)
    assert isinstance(robot, SimRobot) and isinstance(teleop, ScriptedTeleop)
    with robot, teleop:
        features = SpecDict({**robot.observation_spec().features, **robot.action_spec().features})
        fps = robot.config.control_hz
        with EpisodeStore.create(path, features, fps=fps, robot="sim:lift") as store:
            for ep in range(episodes):
                obs = robot.reset(seed=seed + ep)
                teleop.reset(seed=seed + ep)
                writer = store.new_episode(
                    task="lift",
                    instruction=robot.instruction,
                    source="scripted",
                )
                while True:
                    executed = robot.send_action(teleop.get_action(obs))
                    writer.add_step(
                        {**obs.values, **executed.values},
                        {**obs.timestamps, "action": executed.t_exec},
                    )
                    obs = robot.get_observation()
                    if robot.done:
                        break
                writer.commit(success=robot.is_success)
            steps = store.n_steps
    return {"episodes": episodes, "frames": steps, "seconds": time.perf_counter() - t0}


def bench_ours(store: Path, args: argparse.Namespace, obs_keys: list[str] | None) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    from robot_learning.data.sampler import WindowDataset

    ds = WindowDataset(store, n_obs_steps=args.n_obs_steps, horizon=args.horizon, obs_keys=obs_keys)
    torch.manual_seed(0)
    loader: DataLoader[Any] = DataLoader(
        ds,  # type: ignore[arg-type]
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        persistent_workers=args.workers > 0,
    )

    def batches() -> Any:
        while True:
            yield from loader

    it = batches()
    t_warm = time.perf_counter()
    for _ in range(args.warmup_batches):
        next(it)
    warm_s = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    for _ in range(args.batches):
        batch = next(it)
    elapsed = time.perf_counter() - t0
    probe = {
        str(i): {"action": ds[i]["action"].numpy(), "pad": ds[i]["action_is_pad"].numpy()}
        for i in _probe_indices(len(ds))
    }
    return {
        "windows": len(ds),
        "batches": args.batches,
        "warmup_s": round(warm_s, 3),
        "seconds": round(elapsed, 3),
        "windows_per_s": args.batches * args.batch_size / elapsed,
        "batch_shapes": {k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")},
        "probe": probe,
    }


def _probe_indices(n: int) -> list[int]:
    return sorted({0, 1, n // 2, n - 1})


def peer(args: list[str], timeout: float) -> dict[str, Any]:
    """Run lerobot_peer.py in .venv-lerobot; its last stdout line is one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(LEROBOT_PY), str(PEER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"lerobot_peer.py {args[0]} failed (exit {proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["exit_code"] = proc.returncode
    return result


def check_probe(ours: dict[str, Any], theirs: dict[str, Any], label: str) -> list[str]:
    """Our windows and LeRobot's must be the same windows: compare actions and pad masks."""
    problems = []
    for i, mine in ours["probe"].items():
        other = theirs["probe"].get(i)
        if other is None:
            problems.append(f"{label}: window {i} missing from LeRobot's probe")
            continue
        if not np.array_equal(np.asarray(other["action"], dtype=np.float32), mine["action"]):
            problems.append(f"{label}: window {i} actions differ from ours")
        if not np.array_equal(np.asarray(other["action_is_pad"]), mine["pad"]):
            problems.append(f"{label}: window {i} action pad mask differs from ours")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-obs-steps", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40, help="timed batches, ours")
    parser.add_argument(
        "--lerobot-batches", type=int, default=6, help="timed batches, LeRobot (it is slower)"
    )
    parser.add_argument("--obs-keys", default=None, help="comma-separated (default: all)")
    parser.add_argument("--crf", type=int, default=23, help="H.264 quality of the video export")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if not LEROBOT_PY.exists():
        parser.error(f"{LEROBOT_PY} is missing: run bash scripts/bench/setup_lerobot_venv.sh")

    from robot_learning.data.lerobot_v3 import export_lerobot, lerobot_name, write_expected

    tmp = tempfile.TemporaryDirectory(prefix="bench_lerobot_")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    LOG.info("recording %d scripted lift episodes into %s", args.episodes, store)
    rec = record(store, args.episodes, args.image_size, args.seed)
    obs_keys = args.obs_keys.split(",") if args.obs_keys else None
    expect = write_expected(store, work / "expected.npz")
    report: dict[str, Any] = {"recording": rec, "exports": {}, "verify": {}, "problems": []}

    LOG.info("timing our WindowDataset")
    ours = bench_ours(store, args, obs_keys)
    report["ours"] = {k: v for k, v in ours.items() if k != "probe"}

    peer_args = [
        "--n-obs-steps", str(args.n_obs_steps), "--horizon", str(args.horizon),
        "--batch-size", str(args.batch_size), "--workers", str(args.workers),
        "--warmup-batches", str(args.warmup_batches), "--batches", str(args.lerobot_batches),
        "--probe", ",".join(ours["probe"]),
    ]  # fmt: skip
    if obs_keys:
        from robot_learning.data import EpisodeStore

        with EpisodeStore.open(store) as s:
            names = [lerobot_name(k, s.features[k], "observation") for k in obs_keys]
        peer_args += ["--obs-keys", ",".join(names)]
    modes: tuple[Literal["image", "video"], ...] = ("image", "video")
    for mode in modes:
        out = work / f"lerobot_{mode}"
        LOG.info("exporting %s mode to %s", mode, out)
        exp = export_lerobot(store, out, mode=mode, overwrite=True, crf=args.crf)
        report["exports"][mode] = {"seconds": round(exp.seconds, 3), "bytes": exp.nbytes}
        LOG.info("verifying the %s export in lerobot", mode)
        ver = peer(["verify-export", str(out), "--expect", str(expect)], timeout=900)
        report["verify"][mode] = ver
        if not ver.get("ok"):
            report["problems"].append(f"{mode} export: {ver.get('problems')}")
        LOG.info("timing LeRobotDataset (%s mode)", mode)
        theirs = peer(["bench", str(out), *peer_args], timeout=1800)
        report[f"lerobot_{mode}"] = {k: v for k, v in theirs.items() if k != "probe"}
        report["problems"] += check_probe(ours, theirs, f"lerobot {mode}")

    ours_rate = report["ours"]["windows_per_s"]
    report["ratio_vs_lerobot_image"] = ours_rate / report["lerobot_image"]["windows_per_s"]
    report["ratio_vs_lerobot_video"] = ours_rate / report["lerobot_video"]["windows_per_s"]
    report["config"] = {
        k: getattr(args, k)
        for k in ("episodes", "image_size", "batch_size", "workers", "n_obs_steps", "horizon")
    }
    report["config"]["obs_keys"] = obs_keys or "all"
    if args.json:
        sys.stdout.write(json.dumps(report, default=float) + "\n")
    else:
        _print_table(report)
    tmp.cleanup()
    return 0 if not report["problems"] else 1


def _print_table(r: dict[str, Any]) -> None:
    c = r["config"]
    print(
        f"windows of {c['n_obs_steps']} obs + {c['horizon']} actions, batch {c['batch_size']}, "
        f"{c['workers']} workers; {r['recording']['episodes']} episodes / "
        f"{r['recording']['frames']} frames, 2 cameras {c['image_size']}x{c['image_size']}"
    )
    print(f"{'loader':<28}{'windows/s':>12}{'ours / it':>12}{'export MB':>12}")
    rows = [
        ("ours (WindowDataset, zarr)", r["ours"]["windows_per_s"], 1.0, None),
        ("LeRobot image mode", r["lerobot_image"]["windows_per_s"], r["ratio_vs_lerobot_image"],
         r["exports"]["image"]["bytes"] / 1e6),
        ("LeRobot video mode", r["lerobot_video"]["windows_per_s"], r["ratio_vs_lerobot_video"],
         r["exports"]["video"]["bytes"] / 1e6),
    ]  # fmt: skip
    for name, rate, ratio, mb in rows:
        size = f"{mb:12.2f}" if mb is not None else f"{'':>12}"
        print(f"{name:<28}{rate:>12.1f}{ratio:>11.1f}x{size}")
    for mode in ("image", "video"):
        v = r["verify"][mode]
        print(
            f"lerobot load check ({mode}): ok={v.get('ok')} frames={v.get('frames')} "
            f"image err={v.get('image_mean_abs_err_max')}"
        )
    for p in r["problems"]:
        print(f"PROBLEM: {p}")


if __name__ == "__main__":
    sys.exit(main())

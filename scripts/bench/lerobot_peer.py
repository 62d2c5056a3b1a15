#!/usr/bin/env python
"""The real LeRobot (lerobot==0.4.4) side of our interop check and data-loading benchmark.

Runs INSIDE .venv-lerobot (scripts/bench/setup_lerobot_venv.sh), never in the project venv, and
imports nothing from robot_learning: it must judge our exported datasets the way a LeRobot user
would. Every command prints exactly one JSON line on stdout (logs go to stderr).

  lerobot_peer.py check
  lerobot_peer.py verify-export DIR --expect EXPECTED.npz [--repo-id ID] [--video-backend B]
  lerobot_peer.py make-sample DIR --expect-out VALUES.npz [--mode video|image --vcodec C]
  lerobot_peer.py bench DIR [--n-obs-steps 2 --horizon 16 --batch-size 64 --workers 2
                            --warmup-batches 3 --batches 20 --video-backend B --probe 0,5]

EXPECTED.npz (written by robot_learning.data.lerobot_v3.write_expected) holds, per low-dim
LeRobot feature, every frame in dataset order; "episode_ends"; "tasks" (one per episode); and
"frame_rows" + "frames/<camera>" for a sample of camera frames.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOG = logging.getLogger("lerobot_peer")


def _isolate_hf_cache() -> None:
    """No hub access, and a private datasets cache (no stale Arrow caches between runs)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if "HF_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="lerobot_peer_hf_")
        os.environ["HF_HOME"] = home
        atexit.register(shutil.rmtree, home, True)


def define_torchvision_schemas() -> None:
    """Let the local CUDA-built torchvision 0.28.0 wheel import beside a CPU torch.

    That torchvision registers fake kernels for ``torchvision::nms`` / ``qnms`` at import; with
    no compiled C++ ops on this torch the schemas do not exist and the import fails. Defining the
    two schemas first lets models and transforms import (detection ops stay unusable).
    """
    import torch

    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        globals()["_TORCHVISION_LIB"] = lib  # keep the registration alive
    except RuntimeError as exc:  # already defined (a working torchvision build): fine
        LOG.debug("torchvision op schemas not redefined: %s", exc)


def _import_lerobot() -> Any:
    """Import lerobot (and its LeRobotDataset) after :func:`define_torchvision_schemas`."""
    define_torchvision_schemas()
    lerobot = importlib.import_module("lerobot")
    dataset_module = importlib.import_module("lerobot.datasets.lerobot_dataset")
    return lerobot, dataset_module.LeRobotDataset


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _repo_id(root: Path, given: str | None) -> str:
    if given:
        return given
    info = json.loads((root / "meta" / "info.json").read_text())
    return str((info.get("robot_learning") or {}).get("repo_id") or f"local/{root.name}")


# ---- check --------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    lerobot, _ = _import_lerobot()
    import torch

    backends = {}
    for name in ("torchcodec", "av"):
        try:
            module = __import__(name)
            backends[name] = str(getattr(module, "__version__", "?"))
        except Exception as exc:  # report why a video backend is unusable
            backends[name] = f"unavailable: {type(exc).__name__}: {exc}"
    emit({"lerobot": lerobot.__version__, "torch": torch.__version__, "backends": backends})
    return 0


# ---- verify-export ------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    import numpy as np

    _, LeRobotDataset = _import_lerobot()
    root = Path(args.dir)
    expect = np.load(args.expect, allow_pickle=False)
    ds = LeRobotDataset(_repo_id(root, args.repo_id), root=root, video_backend=args.video_backend)
    problems: list[str] = []
    ends = expect["episode_ends"]
    tasks = [str(t) for t in expect["tasks"]]
    if len(ds) != int(ends[-1]):
        problems.append(f"LeRobot sees {len(ds)} frames, expected {int(ends[-1])}")
    if ds.meta.total_episodes != len(ends):
        problems.append(f"LeRobot sees {ds.meta.total_episodes} episodes, expected {len(ends)}")
    starts = np.concatenate([[0], ends[:-1]])
    for ep in range(min(len(ends), ds.meta.total_episodes)):
        row = ds.meta.episodes[ep]
        got = (int(row["dataset_from_index"]), int(row["dataset_to_index"]))
        if got != (int(starts[ep]), int(ends[ep])):
            problems.append(f"episode {ep} rows {got}, expected {(starts[ep], ends[ep])}")
    lowdim = [k for k in expect.files if k not in ("episode_ends", "tasks", "frame_rows")]
    lowdim = [k for k in lowdim if not k.startswith("frames/")]
    frame_rows = {int(r): i for i, r in enumerate(expect["frame_rows"])}
    cameras = [k.removeprefix("frames/") for k in expect.files if k.startswith("frames/")]
    episode_of = np.searchsorted(ends, np.arange(len(ds)), side="right")
    image_err: dict[str, float] = dict.fromkeys(cameras, 0.0)
    t0 = time.perf_counter()
    for i in range(len(ds)):
        item = ds[i]
        ep = int(episode_of[i])
        if int(item["episode_index"]) != ep:
            problems.append(f"frame {i}: episode_index {int(item['episode_index'])} != {ep}")
        if item["task"] != tasks[ep]:
            problems.append(f"frame {i}: task {item['task']!r} != {tasks[ep]!r}")
        for key in lowdim:
            got = item[key].numpy().reshape(expect[key].shape[1:])
            if not np.array_equal(got, expect[key][i]):
                problems.append(f"frame {i}: {key} differs: {got} != {expect[key][i]}")
        if i in frame_rows:
            for cam in cameras:
                img = item[cam].numpy()  # float32 CHW in [0, 1]
                hwc = np.round(np.transpose(img, (1, 2, 0)) * 255.0)
                ref = expect[f"frames/{cam}"][frame_rows[i]].astype(np.float64)
                if hwc.shape != ref.shape:
                    problems.append(f"frame {i}: {cam} is {hwc.shape}, expected {ref.shape}")
                    continue
                image_err[cam] = max(image_err[cam], float(np.abs(hwc - ref).mean()))
        if len(problems) > 20:
            break
    emit(
        {
            "ok": not problems,
            "frames": len(ds),
            "episodes": ds.meta.total_episodes,
            "lowdim_features": lowdim,
            "image_mean_abs_err_max": image_err,
            "video_backend": ds.video_backend if ds.meta.video_keys else None,
            "seconds": round(time.perf_counter() - t0, 3),
            "problems": problems[:20],
        }
    )
    return 0 if not problems else 1


# ---- make-sample ----------------------------------------------------------------------------
def cmd_make_sample(args: argparse.Namespace) -> int:
    """A small dataset written by LeRobot itself (LeRobotDataset.create/add_frame/save_episode):
    the reference our importer must read. Values written are saved to ``--expect-out``."""
    import numpy as np

    _, LeRobotDataset = _import_lerobot()
    size = args.size
    kind = "video" if args.mode == "video" else "image"
    features = {
        "observation.state": {
            "dtype": "float32",
            "shape": (6,),
            "names": [f"j{i}" for i in range(6)],
        },
        "observation.images.front": {
            "dtype": kind,
            "shape": (size, size, 3),
            "names": ["height", "width", "channels"],
        },
        "action": {"dtype": "float32", "shape": (7,), "names": None},
    }
    ds = LeRobotDataset.create(
        args.repo_id or "local/sample",
        fps=args.fps,
        features=features,
        root=args.dir,
        use_videos=kind == "video",
        vcodec=args.vcodec,
    )
    rng = np.random.default_rng(0)
    states, actions, frames, tasks, ends = [], [], [], [], []
    yy, xx = np.mgrid[0:size, 0:size]
    for ep in range(args.episodes):
        task = f"task number {ep % 2}"
        for t in range(args.frames + ep):
            state = rng.standard_normal(6).astype(np.float32)
            action = rng.standard_normal(7).astype(np.float32)
            # smooth content (codec friendly) that still changes every frame
            frame = np.stack(
                [(xx * 4 + t * 9) % 256, (yy * 4 + ep * 60) % 256, (xx + yy) % 256], -1
            )
            frame = frame.astype(np.uint8)
            ds.add_frame(
                {
                    "observation.state": state,
                    "action": action,
                    "observation.images.front": frame,
                    "task": task,
                }
            )
            states.append(state)
            actions.append(action)
            frames.append(frame)
        ds.save_episode()
        tasks.append(task)
        ends.append(len(states))
    ds.finalize()
    np.savez(
        args.expect_out,
        state=np.stack(states),
        action=np.stack(actions),
        frames=np.stack(frames),
        tasks=np.array(tasks),
        episode_ends=np.array(ends),
    )
    emit({"dir": str(args.dir), "frames": len(states), "episodes": args.episodes, "mode": kind})
    return 0


# ---- bench --------------------------------------------------------------------------------------
def _delta_timestamps(
    features: dict[str, Any], fps: int, n_obs: int, horizon: int, obs_keys: list[str] | None
) -> Any:
    """The windows our sampler yields: n_obs observations ending now, horizon actions from the
    first of them (Diffusion Policy's convention)."""
    obs = [(i - (n_obs - 1)) / fps for i in range(n_obs)]
    act = [(i - (n_obs - 1)) / fps for i in range(horizon)]
    keys = obs_keys if obs_keys else [k for k in features if k.startswith("observation.")]
    unknown = [k for k in keys if k not in features]
    if unknown:
        raise SystemExit(f"unknown observation features {unknown}; valid: {sorted(features)}")
    out = {k: obs for k in keys}
    out.update({k: act for k in features if k == "action" or k.startswith("action.")})
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    _, LeRobotDataset = _import_lerobot()
    root = Path(args.dir)
    info = json.loads((root / "meta" / "info.json").read_text())
    obs_keys = args.obs_keys.split(",") if args.obs_keys else None
    delta = _delta_timestamps(
        info["features"], int(info["fps"]), args.n_obs_steps, args.horizon, obs_keys
    )
    ds = LeRobotDataset(
        _repo_id(root, args.repo_id),
        root=root,
        delta_timestamps=delta,
        video_backend=args.video_backend,
    )
    torch.manual_seed(0)
    loader = DataLoader(
        ds,
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
    shapes = {k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")}
    # Only now, with the workers forked: LeRobot's video decoders must not be created in the
    # parent before a multi-worker DataLoader starts (its docs; a forked torchcodec decoder
    # fails with "Could not push packet to decoder").
    probe = {}
    for i in [int(p) for p in args.probe.split(",") if p]:
        item = ds[i]
        probe[str(i)] = {
            "action": item["action"].numpy().tolist(),
            "action_is_pad": item["action_is_pad"].numpy().tolist(),
        }
    emit(
        {
            "windows": len(ds),
            "mode": "video" if ds.meta.video_keys else "image",
            "video_backend": ds.video_backend if ds.meta.video_keys else None,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "batches": args.batches,
            "warmup_s": round(warm_s, 3),
            "seconds": round(elapsed, 3),
            "windows_per_s": args.batches * args.batch_size / elapsed,
            "batch_shapes": shapes,
            "probe": probe,
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="import lerobot; report versions and video backends")
    verify = sub.add_parser("verify-export", help="load DIR with LeRobotDataset; compare frames")
    verify.add_argument("dir")
    verify.add_argument("--expect", required=True, help="EXPECTED.npz (see module docstring)")
    sample = sub.add_parser("make-sample", help="write a small dataset with LeRobot itself")
    sample.add_argument("dir")
    sample.add_argument("--expect-out", required=True, help="npz of the values written")
    sample.add_argument("--mode", choices=("image", "video"), default="video")
    sample.add_argument("--vcodec", default="libsvtav1", help="LeRobot's encoder (its default)")
    sample.add_argument("--size", type=int, default=64)
    sample.add_argument("--fps", type=int, default=10)
    sample.add_argument("--episodes", type=int, default=3)
    sample.add_argument("--frames", type=int, default=6)
    bench = sub.add_parser("bench", help="DataLoader windows/s over DIR with delta_timestamps")
    bench.add_argument("dir")
    for p in (verify, bench, sample):
        p.add_argument("--repo-id", default=None)
        p.add_argument("--video-backend", default=None, help="torchcodec (default) or pyav")
    bench.add_argument("--n-obs-steps", type=int, default=2)
    bench.add_argument("--horizon", type=int, default=16)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--workers", type=int, default=2)
    bench.add_argument("--warmup-batches", type=int, default=3)
    bench.add_argument("--batches", type=int, default=20)
    bench.add_argument("--obs-keys", default=None, help="comma-separated (default: all)")
    bench.add_argument("--probe", default="", help="comma-separated window indices to return")
    args = parser.parse_args(argv)
    _isolate_hf_cache()
    handler = {
        "check": cmd_check,
        "verify-export": cmd_verify,
        "make-sample": cmd_make_sample,
        "bench": cmd_bench,
    }[args.cmd]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())

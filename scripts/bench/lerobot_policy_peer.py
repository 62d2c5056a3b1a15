#!/usr/bin/env python
"""The real LeRobot (lerobot==0.4.4) side of our policy-latency benchmark.

Runs INSIDE .venv-lerobot (scripts/bench/setup_lerobot_venv.sh), never in the project venv, and
imports nothing from robot_learning. It builds LeRobot's own ``DiffusionPolicy`` (untrained
weights; ``pretrained_backbone_weights=None``: no hub access) and times the generation of one
action chunk at batch 1 on the CPU, then prints exactly one JSON line on stdout (logs: stderr).

One timed call is what ``DiffusionPolicy.select_action`` does when its action queue is empty,
starting from raw observation windows as a robot delivers them (uint8 HWC images, float32
state): the conversion of ``lerobot.policies.utils.prepare_observation_for_inference`` (to float
CHW in [0, 1]), the policy preprocessor (``make_diffusion_pre_post_processors``: normalization
with the given dataset statistics), stacking the cameras into ``observation.images``,
``policy.diffusion.generate_actions`` (image encoder + every denoising step of the UNet) and the
postprocessor (unnormalization). The window of ``n_obs_steps`` observations is passed directly,
as ``predict_action_chunk`` would stack it from its queues.

  lerobot_policy_peer.py [--cameras 2 --image-size 96 --crop 84 --state-dim 8 --env-state-dim 0
                          --action-dim 7 --scheduler DDIM --steps 10 --down-dims 512,1024,2048
                          --separate-encoders --defaults --warmup 2 --repeats 20 --threads 2]

``--defaults`` keeps LeRobot's ``DiffusionConfig()`` as it is (DDPM, 100 steps, no crop, shared
ResNet-18) and only sets the input/output features; ``--scheduler/--steps/--crop/--down-dims/
--separate-encoders/--horizon/--n-obs-steps/--n-action-steps`` are then ignored.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import sys
import time
from typing import Any

from lerobot_peer import define_torchvision_schemas, emit  # same directory, same venv

LOG = logging.getLogger("lerobot_policy_peer")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """LeRobot's DiffusionPolicy + pre/post processors for the requested features."""
    import torch

    define_torchvision_schemas()
    lerobot = importlib.import_module("lerobot")
    types = importlib.import_module("lerobot.configs.types")
    cfg_mod = importlib.import_module("lerobot.policies.diffusion.configuration_diffusion")
    model_mod = importlib.import_module("lerobot.policies.diffusion.modeling_diffusion")
    proc_mod = importlib.import_module("lerobot.policies.diffusion.processor_diffusion")
    PolicyFeature, FeatureType = types.PolicyFeature, types.FeatureType

    inputs: dict[str, Any] = {}
    stats: dict[str, dict[str, Any]] = {}
    for cam in range(args.cameras):
        key = f"observation.images.cam{cam}"
        size = args.image_size
        inputs[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, size, size))
        stats[key] = {
            "mean": torch.tensor(IMAGENET_MEAN).view(3, 1, 1),
            "std": torch.tensor(IMAGENET_STD).view(3, 1, 1),
        }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(args.state_dim,))
    stats["observation.state"] = _minmax(args.state_dim)
    if args.env_state_dim:
        inputs["observation.environment_state"] = PolicyFeature(
            type=FeatureType.ENV, shape=(args.env_state_dim,)
        )
        stats["observation.environment_state"] = _minmax(args.env_state_dim)
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(args.action_dim,))}
    stats["action"] = _minmax(args.action_dim)

    kwargs: dict[str, Any] = {
        "input_features": inputs,
        "output_features": outputs,
        "device": "cpu",
        "pretrained_backbone_weights": None,  # the default; explicit: no hub download
    }
    if not args.defaults:
        kwargs.update(
            noise_scheduler_type=args.scheduler,
            num_inference_steps=args.steps,
            down_dims=tuple(int(d) for d in args.down_dims.split(",")),
            kernel_size=5,
            n_groups=8,
            diffusion_step_embed_dim=128,
            use_film_scale_modulation=True,
            use_separate_rgb_encoder_per_camera=args.separate_encoders,
            crop_shape=(args.crop, args.crop) if args.crop else None,
            horizon=args.horizon,
            n_obs_steps=args.n_obs_steps,
            n_action_steps=args.n_action_steps,
        )
    config = cfg_mod.DiffusionConfig(**kwargs)
    policy = model_mod.DiffusionPolicy(config).eval()
    pre, post = proc_mod.make_diffusion_pre_post_processors(config, dataset_stats=stats)
    unet = policy.diffusion.unet
    info = {
        "lerobot": lerobot.__version__,
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "denoiser_parameters": sum(p.numel() for p in unet.parameters()),
        "config": {
            "vision_backbone": config.vision_backbone if args.cameras else None,
            "pretrained_backbone_weights": config.pretrained_backbone_weights,
            "use_group_norm": config.use_group_norm,
            "use_separate_rgb_encoder_per_camera": config.use_separate_rgb_encoder_per_camera,
            "crop_shape": list(config.crop_shape) if config.crop_shape else None,
            "resize_shape": list(config.resize_shape) if config.resize_shape else None,
            "down_dims": list(config.down_dims),
            "kernel_size": config.kernel_size,
            "n_groups": config.n_groups,
            "diffusion_step_embed_dim": config.diffusion_step_embed_dim,
            "use_film_scale_modulation": config.use_film_scale_modulation,
            "noise_scheduler_type": config.noise_scheduler_type,
            "num_train_timesteps": config.num_train_timesteps,
            "inference_steps": policy.diffusion.num_inference_steps,
            "horizon": config.horizon,
            "n_obs_steps": config.n_obs_steps,
            "n_action_steps": config.n_action_steps,
        },
    }
    return policy, pre, post, info


def _minmax(dim: int) -> dict[str, Any]:
    import torch

    return {"min": -torch.ones(dim), "max": torch.ones(dim)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    policy, pre, post, info = build(args)
    config = policy.config
    rng = np.random.default_rng(args.seed)
    t_obs = config.n_obs_steps
    size = args.image_size
    # raw observation windows as a robot delivers them: [1, n_obs_steps, ...]
    raw: dict[str, np.ndarray] = {
        key: rng.integers(0, 256, (1, t_obs, size, size, 3), dtype=np.uint8)
        for key in config.image_features
    }
    raw["observation.state"] = rng.uniform(-1, 1, (1, t_obs, args.state_dim)).astype(np.float32)
    if args.env_state_dim:
        raw["observation.environment_state"] = rng.uniform(
            -1, 1, (1, t_obs, args.env_state_dim)
        ).astype(np.float32)
    image_keys = list(config.image_features)

    def one_chunk() -> Any:
        obs: dict[str, Any] = {}
        for key, value in raw.items():
            tensor = torch.from_numpy(value)
            if "image" in key:  # prepare_observation_for_inference, on the whole window
                tensor = tensor.type(torch.float32) / 255
                tensor = tensor.permute(0, 1, 4, 2, 3).contiguous()
            obs[key] = tensor
        batch = pre(obs)
        if image_keys:
            batch["observation.images"] = torch.stack([batch[k] for k in image_keys], dim=-4)
        actions = policy.diffusion.generate_actions(batch)
        return post(actions)

    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            out = one_chunk()
        warm_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = one_chunk()
            times.append(time.perf_counter() - t0)
    return {
        **info,
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "warmup_s": round(warm_s, 3),
        "repeats": args.repeats,
        "times_ms": [round(t * 1e3, 3) for t in times],
        "p50_ms": percentile(times, 50) * 1e3,
        "p99_ms": percentile(times, 99) * 1e3,
        "mean_ms": statistics.fmean(times) * 1e3,
        "min_ms": min(times) * 1e3,
        "chunk_shape": list(out.shape),
        "chunk_finite": bool(torch.isfinite(out).all()),
    }


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), without needing numpy here."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--crop", type=int, default=84, help="square centre crop; 0: none")
    parser.add_argument("--state-dim", type=int, default=8)
    parser.add_argument("--env-state-dim", type=int, default=0, help="0: no environment state")
    parser.add_argument("--action-dim", type=int, default=7)
    parser.add_argument("--scheduler", choices=("DDPM", "DDIM"), default="DDIM")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps at inference")
    parser.add_argument("--down-dims", default="512,1024,2048")
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--n-obs-steps", type=int, default=2)
    parser.add_argument("--n-action-steps", type=int, default=8)
    parser.add_argument("--separate-encoders", action="store_true", help="one encoder per camera")
    parser.add_argument(
        "--defaults", action="store_true", help="LeRobot's DiffusionConfig() defaults (see above)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    emit(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

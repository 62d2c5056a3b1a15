"""CPU latency of the compact VLA next to the same diffusion policy without language, batch 1.

Why: the VLA adds a frozen MiniLM and FiLM layers to a diffusion policy; this measures what that
costs per ``predict_chunk`` on real observation windows from a store, in one run. Three VLA
figures: the first call (loads MiniLM), steady state with instructions already embedded (the
cache), and a new instruction on every call (an embedding each time).

    .venv/bin/python scripts/bench/vla_latency.py --vla runs/vla --baseline runs/vla_blind \\
        --data demos_pick_language [--calls 100] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_learning.data.store import EpisodeStore
from robot_learning.policies import Policy, load_policy

COLORS = ("red", "green", "blue", "yellow")


def windows(store: Path, policy: Policy, count: int) -> list[dict[str, Any]]:
    """``count`` observation windows (batch 1) from the store's episodes, in the policy's keys."""
    keys = [k for k, s in policy.observation_spec.items() if s.kind != "language"]
    out: list[dict[str, Any]] = []
    with EpisodeStore.open(store) as s:
        for index in range(s.n_episodes):
            episode = s.read_episode(index, keys)
            length = len(episode[keys[0]])
            for t in range(policy.n_obs_steps - 1, length, 5):
                rows = slice(t - policy.n_obs_steps + 1, t + 1)
                out.append({k: np.asarray(episode[k][rows])[None] for k in keys})
                if len(out) == count:
                    return out
    return out


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def summary(ms: list[float]) -> dict[str, float]:
    arr = np.asarray(ms)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def bench(
    policy: Policy, obs: list[dict[str, Any]], instruction: Callable[[int], str]
) -> list[float]:
    language = [k for k, s in policy.observation_spec.items() if s.kind == "language"]
    out = []
    for i, window in enumerate(obs):
        full = {**window, **{k: [instruction(i)] for k in language}}
        out.append(timed(lambda full=full: policy.predict_chunk(full)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vla", type=Path, required=True, help="VLA checkpoint directory")
    parser.add_argument(
        "--baseline", type=Path, required=True, help="diffusion policy, no language"
    )
    parser.add_argument("--data", type=Path, required=True, help="store to take windows from")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vla, baseline = load_policy(args.vla), load_policy(args.baseline)
    obs = windows(args.data, vla, args.calls + 5)
    first = bench(vla, obs[:1], lambda i: "pick up the red cube")[0]
    bench(vla, obs[:5], lambda i: f"pick up the {COLORS[i % 4]} cube")  # warm-up, fills the cache
    bench(baseline, obs[:5], lambda i: "")
    calls = obs[5:]
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads},
        "calls": len(calls),
        "vla_first_call_ms": first,
        "vla_cached": summary(bench(vla, calls, lambda i: f"pick up the {COLORS[i % 4]} cube")),
        "vla_new_instruction_each_call": summary(
            bench(vla, calls, lambda i: f"pick up the {COLORS[i % 4]} cube, attempt {i}")
        ),
        "diffusion_no_language": summary(bench(baseline, calls, lambda i: "")),
        "parameters": {
            "vla_trained": sum(p.numel() for p in vla.parameters()),  # type: ignore[attr-defined]
            "baseline": sum(p.numel() for p in baseline.parameters()),  # type: ignore[attr-defined]
            "minilm_frozen": 22_713_216,
        },
    }
    ratio = results["vla_cached"]["p50_ms"] / results["diffusion_no_language"]["p50_ms"]
    results["vla_over_diffusion_p50"] = ratio
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"predict_chunk latency, batch 1, {args.threads} threads, {len(calls)} calls each")
    print(f"  VLA first call (loads MiniLM)     {first:8.1f} ms")
    for name, key in (
        ("VLA, instructions cached", "vla_cached"),
        ("VLA, a new instruction each call", "vla_new_instruction_each_call"),
        ("diffusion policy, no language", "diffusion_no_language"),
    ):
        r = results[key]
        print(f"  {name:33s} p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms")
    print(f"  VLA / diffusion p50: {ratio:.2f}x")


if __name__ == "__main__":
    main()

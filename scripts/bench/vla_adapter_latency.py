"""``predict_chunk`` latency of the two VLA adapters on tiny random checkpoints, batch 1.

Why: the adapters wrap transformers models behind :class:`Policy`; this measures what that path
costs (prompt building, image preprocessing, greedy token decoding or Euler flow steps) on a
model small enough that the wrapping, not the model, is most of the time. It builds both tiny
checkpoints in a temporary directory, loads them with ``load_policy``, warms up, then times
``--calls`` calls each. The numbers say nothing about published model sizes.

    .venv/bin/python scripts/bench/vla_adapter_latency.py [--calls 50] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_learning.policies import load_policy
from robot_learning.policies.adapters import build_tiny_flow_vla, build_tiny_openvla


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_calls(fn: Callable[[], Any], warmup: int, calls: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def observation(state: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    obs: dict[str, Any] = {
        "image": rng.integers(0, 256, (1, 1, 64, 64, 3), dtype=np.uint8),
        "task": ["pick the red cube and put it in the bowl"],
    }
    if state:
        obs["state"] = rng.normal(size=(1, 1, 4)).astype(np.float32)
    return obs


def bench(directory: Path, state: bool, warmup: int, calls: int) -> dict[str, Any]:
    policy = load_policy(directory)
    obs = observation(state)
    times = time_calls(lambda: policy.predict_chunk(obs), warmup, calls)
    assert isinstance(policy, torch.nn.Module)  # both adapters are modules
    params = sum(p.numel() for p in policy.parameters())
    return {
        "chunk_len": policy.chunk_len,
        "action_dim": policy.action_dim,
        "parameters": int(params),
        "calls": calls,
        "latency_ms_p50": round(percentile(times, 50), 3),
        "latency_ms_p99": round(percentile(times, 99), 3),
        "latency_ms_mean": round(statistics.fmean(times), 3),
    }


def machine(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50, help="timed calls per adapter")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": machine(args.threads), "batch": 1, "adapters": {}}
    with tempfile.TemporaryDirectory(prefix="vla_adapters_") as tmp:
        openvla = build_tiny_openvla(Path(tmp) / "openvla")
        flow = build_tiny_flow_vla(Path(tmp) / "flow", chunk_len=8, num_steps=10)
        results["adapters"]["openvla_tokens"] = bench(openvla, False, args.warmup, args.calls)
        results["adapters"]["flow_vla"] = bench(flow, True, args.warmup, args.calls)
    results["adapters"]["flow_vla"]["num_steps"] = 10
    if args.json:
        print(json.dumps(results))
        return
    m = results["machine"]
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads)")
    print(f"{'adapter':<16}{'params':>10}{'chunk':>7}{'p50 ms':>10}{'p99 ms':>10}")
    for name, row in results["adapters"].items():
        print(
            f"{name:<16}{row['parameters']:>10}{row['chunk_len']:>7}"
            f"{row['latency_ms_p50']:>10.2f}{row['latency_ms_p99']:>10.2f}"
        )


if __name__ == "__main__":
    main()

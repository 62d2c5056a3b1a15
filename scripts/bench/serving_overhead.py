#!/usr/bin/env python
"""Protocol overhead of our policy server vs LeRobot 0.4.4's gRPC async inference, on loopback.

Why: a remote policy is only worth it if the hop costs little next to the model. Overhead is
what a client waits for beyond the model itself: round trip minus model time, p50/p99, measured
in one run for both stacks on the same payloads (2 RGB cameras uint8 HWC at 96x96 and 640x480,
plus 14 float32 of proprioception; a 50x14 float32 chunk back). Goal: ours <= 2 ms p50 at 96x96
and >= 3x lower than LeRobot.

Ours: ``robot_learning.serving`` (websocket + msgpack, arrays as raw bytes) with a
``FixedCostPolicy`` defined here in a ``ServerThread``; a ``PolicyClient`` in the same process
times ``infer()`` (encode, send, validation, batching worker, model thread, reply, decode).
Server defaults (``max_batch=8``, ``max_wait_ms=2``: a lone client is not held by the window).

LeRobot: ``lerobot_grpc_peer.py`` in .venv-lerobot runs LeRobot's real ``PolicyServer``
servicer in a ``grpc.server`` (4 threads, as its ``serve()``) with the model replaced by the
same fixed-cost stand-in, and a client in the same process doing what ``RobotClient`` does for
one chunk: ``pickle.dumps(TimedObservation)``, ``SendObservations`` (``send_bytes_in_chunks``),
``GetActions``, ``pickle.loads`` of the ``TimedAction`` list. See that file for the exact
deviations (no checkpoint load, ``inference_latency=0``, ``must_go=True``, logging at WARNING,
no observation-to-tensor conversion or pre/post-processing: all in LeRobot's favour).

Model time, the same boundary on both sides: the time spent inside the stand-in model (ours:
``predict_chunk``; LeRobot: the sleep and the chunk tensor inside its replaced
``_predict_action_chunk``, while splitting the chunk into ``TimedAction`` objects, its reply
format, counts as overhead), recorded per request by the model and subtracted per request.
Our server also reports ``timing.infer_ms``, which additionally covers stacking the batch and
the hand-off to the model thread; ``rtt - infer_ms`` is reported too
(``overhead_vs_server_infer_ms_*``) and is smaller.

Throughput: requests/s over ``--throughput-s`` s with 1, 4 and 16 closed-loop clients (each its
own process and connection) at 96x96, against a model that sleeps ``--throughput-model-ms`` per
``predict_chunk`` call whatever the batch size (plus the server's real stacking of the batch):
ours with ``max_batch=1`` (no batching) and ``max_batch=16``. LeRobot's PolicyServer serves one
robot at a time by design (``Ready`` resets it; a single-slot observation queue that a second
client would overwrite), so it is measured with 1 client only (same model, its client in its
own process).

Usage (after ``bash scripts/bench/setup_lerobot_venv.sh``):
  .venv/bin/python scripts/bench/serving_overhead.py [--repeats 300] [--throughput-s 3]
      [--clients 1,4,16] [--json] [--ours-only]
A full run takes about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER = REPO_ROOT / "scripts" / "bench" / "lerobot_grpc_peer.py"
LEROBOT_PY = REPO_ROOT / ".venv-lerobot" / "bin" / "python"
SETUP_HINT = "bash scripts/bench/setup_lerobot_venv.sh"
LOG = logging.getLogger("bench.serving_overhead")
PICKLE_NOTE = (
    "LeRobot's async inference pickles observations and action chunks by design "
    "(pickle.loads of network bytes executes code: remote code execution for anyone who can "
    "reach the port); ours decodes msgpack with numeric arrays only."
)


def fixed_cost_policy(
    args: argparse.Namespace, width: int, height: int, model_ms: float
) -> tuple[Policy, dict[int, float]]:
    """A policy that sleeps ``model_ms`` per ``predict_chunk`` call whatever the batch size and
    returns zero actions; and the dict where it records each call's duration (ms).

    The duration is recorded under the request index carried in ``state[0]`` (a float32 holds
    integers exactly up to 2**24), so model time is subtracted per request. Defined on call: the
    policies package imports torch, which the spawned client processes must not pay for.
    """
    from robot_learning.policies.base import Policy
    from robot_learning.specs import FeatureSpec, SpecDict

    durations: dict[int, float] = {}
    model_s = model_ms / 1e3

    class FixedCostPolicy(Policy):
        def predict_chunk(self, obs: Any, prefix: np.ndarray | None = None) -> np.ndarray:
            start = time.perf_counter()
            if model_s > 0:
                time.sleep(model_s)
            out = np.zeros((len(obs["state"]), self.chunk_len, self.action_dim), np.float32)
            elapsed_ms = (time.perf_counter() - start) * 1e3
            for key in obs["state"][:, -1, 0]:
                durations[int(key)] = elapsed_ms
            return out

    policy = FixedCostPolicy()
    rgb = FeatureSpec((height, width, 3), "uint8", "rgb")
    features = {f"cam{i}": rgb for i in range(args.cameras)}
    features["state"] = FeatureSpec((args.state_dim,), "float32", "lowdim")
    policy.observation_spec = SpecDict(features)
    policy.action_spec = SpecDict({"action": FeatureSpec((args.action_dim,), "float32", "lowdim")})
    policy.n_obs_steps = 1
    policy.chunk_len = args.chunk_len
    policy.n_action_steps = args.chunk_len // 2
    policy.control_hz = 30.0
    return policy, durations


def make_obs(policy: Policy, rng: np.random.Generator, key: int = 0) -> dict[str, Any]:
    """One robot's observation window ``[n_obs_steps, *shape]`` per feature."""
    obs: dict[str, Any] = {}
    for name, spec in policy.observation_spec.items():
        shape = (policy.n_obs_steps, *spec.shape)
        if spec.dtype == "uint8":
            obs[name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        else:
            obs[name] = rng.standard_normal(shape).astype(np.float32)
    obs["state"][:, 0] = key
    return obs


def _parse_payload(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def percentiles(values: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 99])
    return float(p50), float(p99)


# ---- ours: latency ------------------------------------------------------------------------------
def ours_latency(args: argparse.Namespace, width: int, height: int) -> dict[str, Any]:
    from robot_learning.serving.client import PolicyClient
    from robot_learning.serving.protocol import pack
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

    policy, durations = fixed_cost_policy(args, width, height, args.model_ms)
    rng = np.random.default_rng(args.seed)
    base = [make_obs(policy, rng) for _ in range(4)]
    overhead: list[float] = []
    vs_infer: list[float] = []
    rtts: list[float] = []
    models: list[float] = []
    with (
        ServerThread(PolicyServer({"bench": policy})) as thread,
        PolicyClient(thread.url) as client,
    ):
        client.connect()
        for i in range(args.warmup + args.repeats):
            obs = dict(base[i % len(base)])
            obs["state"] = obs["state"].copy()
            obs["state"][:, 0] = i + 1
            start = time.perf_counter()
            reply = client.infer(obs)
            rtt = (time.perf_counter() - start) * 1e3
            model = durations.pop(i + 1)
            if i >= args.warmup:
                rtts.append(rtt)
                models.append(model)
                overhead.append(rtt - model)
                vs_infer.append(rtt - float(reply.timing["infer_ms"]))
        request_bytes = len(pack({"type": "infer", "id": 1, "obs": base[0]}))
        reply_msg = {"type": "actions", "id": 1, "actions": reply.actions, "timing": reply.timing}
        reply_bytes = len(pack(reply_msg))
    return _latency_row(rtts, models, overhead, request_bytes, reply_bytes, vs_infer)


def _latency_row(
    rtts: list[float],
    models: list[float],
    overhead: list[float],
    request_bytes: int,
    reply_bytes: int,
    vs_infer: list[float] | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"samples": len(rtts)}
    for label, values in (("overhead", overhead), ("rtt", rtts), ("model", models)):
        p50, p99 = percentiles(values)
        row[f"{label}_ms_p50"], row[f"{label}_ms_p99"] = p50, p99
    if vs_infer is not None:
        p50, p99 = percentiles(vs_infer)
        row["overhead_vs_server_infer_ms_p50"], row["overhead_vs_server_infer_ms_p99"] = p50, p99
    row["request_bytes"], row["reply_bytes"] = request_bytes, reply_bytes
    return row


# ---- ours: throughput ---------------------------------------------------------------------------
def _client_worker(conn: Connection) -> None:
    """A client process: on ("run", url, obs, seconds) connect, warm up, say "ready", wait for
    the common start time, then infer in a closed loop until it has passed ``seconds``."""
    from robot_learning.serving.client import PolicyClient

    while (cmd := conn.recv()) is not None:
        _, url, obs, seconds = cmd
        result: dict[str, Any] = {"requests": 0, "batch_sum": 0.0, "error": None}
        try:
            with PolicyClient(url, request_timeout_s=30.0) as client:
                client.connect()
                for _ in range(3):
                    client.infer(obs)
                conn.send("ready")
                start_at = conn.recv()
                while time.time() < start_at:
                    time.sleep(0.0005)
                deadline = start_at + seconds
                while time.time() < deadline:
                    reply = client.infer(obs)
                    result["requests"] += 1
                    result["batch_sum"] += float(reply.timing["batch_size"])
        except Exception as exc:  # reported, not raised: the bench shows which run failed
            result["error"] = f"{type(exc).__name__}: {exc}"
            conn.send("ready")
            conn.recv()
        conn.send(result)


class ClientPool:
    """``size`` spawned client processes, reused across runs."""

    def __init__(self, size: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for _ in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_client_worker, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def run(self, url: str, obs: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
        conns = self.conns[:clients]
        for conn in conns:
            conn.send(("run", url, obs, seconds))
        for conn in conns:
            if not conn.poll(300):
                raise RuntimeError("a client process did not connect within 300 s")
            conn.recv()
        start_at = time.time() + 0.2
        for conn in conns:
            conn.send(start_at)
        results = [conn.recv() for conn in conns]
        errors = [r["error"] for r in results if r["error"]]
        requests = sum(r["requests"] for r in results)
        return {
            "clients": clients,
            "requests": requests,
            "seconds": seconds,
            "requests_per_s": requests / seconds,
            "mean_batch_size": sum(r["batch_sum"] for r in results) / max(requests, 1),
            "errors": errors,
        }

    def close(self) -> None:
        for conn in self.conns:
            conn.send(None)
        for proc in self.procs:
            proc.join(timeout=10)


def ours_throughput(args: argparse.Namespace, client_counts: list[int]) -> list[dict[str, Any]]:
    from robot_learning.serving.server import PolicyServer
    from robot_learning.serving.thread import ServerThread

    width, height = _parse_payload(args.payloads.split(",")[0])
    policy, _ = fixed_cost_policy(args, width, height, args.throughput_model_ms)
    obs = make_obs(policy, np.random.default_rng(args.seed))
    pool = ClientPool(max(client_counts))
    rows: list[dict[str, Any]] = []
    try:
        for max_batch in (1, 16):
            server = PolicyServer({"bench": policy}, max_batch=max_batch, max_wait_ms=2.0)
            with ServerThread(server) as thread:
                for clients in client_counts:
                    row = pool.run(thread.url, obs, clients, args.throughput_s)
                    row["max_batch"] = max_batch
                    rate = row["requests_per_s"]
                    LOG.info("ours max_batch=%d, %d clients: %.0f req/s", max_batch, clients, rate)
                    rows.append(row)
    finally:
        pool.close()
    return rows


# ---- LeRobot (subprocess in .venv-lerobot) ------------------------------------------------------
def bench_lerobot(args: argparse.Namespace) -> dict[str, Any]:
    """Run lerobot_grpc_peer.py in .venv-lerobot; its last stdout line is one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    flags = {
        "payloads": args.payloads,
        "cameras": args.cameras,
        "state-dim": args.state_dim,
        "chunk-len": args.chunk_len,
        "action-dim": args.action_dim,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "model-ms": args.model_ms,
        "throughput-model-ms": args.throughput_model_ms,
        "throughput-s": args.throughput_s,
        "seed": args.seed,
    }
    cmd = [str(LEROBOT_PY), str(PEER)]
    for key, value in flags.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.timeout, env=env, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"lerobot_grpc_peer.py failed (exit {proc.returncode}): {proc.stderr[-3000:]}"
        )
    peer: dict[str, Any] = json.loads(lines[-1])
    return peer


def lerobot_latency(peer: dict[str, Any], payload: str) -> dict[str, Any]:
    for entry in peer["latency"]:
        if entry["payload"] == payload:
            rtts, models = entry["rtt_ms"], entry["model_ms"]
            overhead = [r - m for r, m in zip(rtts, models, strict=True)]
            return _latency_row(
                rtts, models, overhead, entry["request_bytes"], entry["reply_bytes"]
            )
    raise RuntimeError(f"the LeRobot peer returned no row for payload {payload}")


# ---- report -------------------------------------------------------------------------------------
def machine_line() -> tuple[dict[str, Any], str]:
    from policy_latency_vs_lerobot import machine_info  # same directory

    info = machine_info(1)
    line = (
        f"{info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"Python {info['python']}, load average at start {info['loadavg_start']}"
    )
    return info, line


def print_table(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"machine: {result['machine_line']}\n")
    out(f"model: {result['model']['latency']}\n\n")
    out("Protocol overhead = round trip - model time (ms), loopback, 1 client\n")
    head = (
        f"{'payload':<34} {'ours p50 / p99':>16} {'LeRobot p50 / p99':>19} {'ratio p50 / p99':>16}"
    )
    out(head + "\n" + "-" * len(head) + "\n")
    for row in result["latency"]:
        ours, lero = row["ours"], row.get("lerobot")
        ours_txt = f"{ours['overhead_ms_p50']:.2f} / {ours['overhead_ms_p99']:.2f}"
        lero_txt = ratio_txt = "n/a"
        if lero:
            lero_txt = f"{lero['overhead_ms_p50']:.2f} / {lero['overhead_ms_p99']:.2f}"
            ratio_txt = f"{row['ratio_p50']:.1f}x / {row['ratio_p99']:.1f}x"
        out(f"{row['label']:<34} {ours_txt:>16} {lero_txt:>19} {ratio_txt:>16}\n")
    out("\n")
    for row in result["latency"]:
        ours, lero = row["ours"], row.get("lerobot")
        out(
            f"{row['payload']}: ours rtt p50 {ours['rtt_ms_p50']:.2f} ms, request "
            f"{ours['request_bytes']:,} B, reply {ours['reply_bytes']:,} B; rtt - server "
            f"infer_ms p50 {ours['overhead_vs_server_infer_ms_p50']:.2f} ms"
        )
        if lero:
            out(
                f" | LeRobot rtt p50 {lero['rtt_ms_p50']:.2f} ms, request "
                f"{lero['request_bytes']:,} B, reply {lero['reply_bytes']:,} B"
            )
        out("\n")
    out(f"\nThroughput (requests/s), {result['model']['throughput']}\n")
    head = (
        f"{'clients':>7} {'ours max_batch=1':>17} {'ours max_batch=16':>18} "
        f"{'(mean batch)':>13} {'LeRobot':>9}"
    )
    out(head + "\n" + "-" * len(head) + "\n")
    for row in result["throughput"]:
        lero = row.get("lerobot_requests_per_s")
        out(
            f"{row['clients']:>7} {row['ours_max_batch_1_requests_per_s']:>17.0f} "
            f"{row['ours_max_batch_16_requests_per_s']:>18.0f} "
            f"{row['ours_max_batch_16_mean_batch_size']:>13.1f} "
            f"{'n/a' if lero is None else f'{lero:.0f}':>9}\n"
        )
    out("\n" + "\n".join(f"- {note}" for note in result["notes"]) + "\n")
    for goal, met in result["goals"].items():
        out(f"goal {goal}: {'met' if met else 'NOT met'}\n")


def assemble(
    args: argparse.Namespace,
    latency: dict[str, dict[str, Any]],
    throughput: list[dict[str, Any]],
    peer: dict[str, Any] | None,
    client_counts: list[int],
) -> dict[str, Any]:
    info, line = machine_line()
    rows = []
    for payload, ours in latency.items():
        width, height = _parse_payload(payload)
        row: dict[str, Any] = {
            "payload": payload,
            "label": f"{args.cameras}x RGB {width}x{height} + {args.state_dim} f32",
            "ours": ours,
        }
        if peer is not None:
            lero = lerobot_latency(peer, payload)
            row["lerobot"] = lero
            row["ratio_p50"] = lero["overhead_ms_p50"] / ours["overhead_ms_p50"]
            row["ratio_p99"] = lero["overhead_ms_p99"] / ours["overhead_ms_p99"]
        rows.append(row)
    by_key = {(r["max_batch"], r["clients"]): r for r in throughput}
    tp_rows = []
    for clients in client_counts:
        one, sixteen = by_key[(1, clients)], by_key[(16, clients)]
        tp: dict[str, Any] = {
            "clients": clients,
            "ours_max_batch_1_requests_per_s": one["requests_per_s"],
            "ours_max_batch_1_mean_batch_size": one["mean_batch_size"],
            "ours_max_batch_16_requests_per_s": sixteen["requests_per_s"],
            "ours_max_batch_16_mean_batch_size": sixteen["mean_batch_size"],
            "errors": one["errors"] + sixteen["errors"],
            "lerobot_requests_per_s": None,
        }
        if peer is not None and clients == 1:
            tp["lerobot_requests_per_s"] = peer["throughput"]["requests_per_s"]
        tp_rows.append(tp)
    first = rows[0]  # the small payload (96x96 by default): the goal's reference
    goals = {"ours_p50_le_2ms_at_" + first["payload"]: first["ours"]["overhead_ms_p50"] <= 2.0}
    for row in rows if peer is not None else []:
        goals["ratio_p50_ge_3x_at_" + row["payload"]] = row["ratio_p50"] >= 3.0
    shape = f"zeros [B, {args.chunk_len}, {args.action_dim}] float32"
    notes = [
        PICKLE_NOTE,
        "Client and server share one process on each side (ours: ServerThread + PolicyClient; "
        "LeRobot: grpc.server + stub); throughput clients are separate processes.",
        "LeRobot's PolicyServer serves one robot at a time (Ready resets it, a single-slot "
        "observation queue): measured with 1 client only.",
        "LeRobot side: real PolicyServer handlers; no checkpoint load, inference_latency=0, "
        "must_go=True, its logging at WARNING, no observation-to-tensor conversion or "
        "pre/post-processing (all in its favour; see lerobot_grpc_peer.py).",
    ]
    if info.get("loadavg_start") and info["loadavg_start"][0] > 0.5 * (info["cores"] or 1):
        notes.append(f"The machine was busy (load average {info['loadavg_start']} at start).")
    return {
        "machine": info,
        "machine_line": line,
        "lerobot": None
        if peer is None
        else {k: peer[k] for k in ("lerobot", "grpcio", "protobuf", "torch", "server")},
        "model": {
            "latency": f"FixedCostPolicy: {args.model_ms:g} ms sleep per predict_chunk call, "
            f"returns {shape}; chunk {args.chunk_len}x{args.action_dim}",
            "throughput": f"{args.payloads.split(',')[0]} payload, FixedCostPolicy sleeping "
            f"{args.throughput_model_ms:g} ms per predict_chunk call whatever the batch size "
            f"(the server stacks the batch), {args.throughput_s:g} s per point",
            "latency_model_ms": args.model_ms,
            "throughput_model_ms": args.throughput_model_ms,
        },
        "latency": rows,
        "throughput": tp_rows,
        "goals": goals,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # one line per connection
    logging.getLogger("robot_learning").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", default="96x96,640x480", help="WxH per camera, comma list")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--state-dim", type=int, default=14)
    parser.add_argument("--chunk-len", type=int, default=50)
    parser.add_argument("--action-dim", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=300, help="timed round trips per payload")
    parser.add_argument("--model-ms", type=float, default=0.0, help="model cost, latency runs")
    parser.add_argument("--throughput-model-ms", type=float, default=5.0)
    parser.add_argument("--throughput-s", type=float, default=3.0, help="seconds per point")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients, comma list")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600, help="LeRobot subprocess, s")
    parser.add_argument("--ours-only", action="store_true", help="skip LeRobot (no .venv-lerobot)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be >= 2")
    client_counts = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    if not client_counts or min(client_counts) < 1:
        parser.error("--clients needs positive integers")
    if not args.ours_only and not LEROBOT_PY.exists():
        parser.error(f"{LEROBOT_PY} is missing: create it with `{SETUP_HINT}`, or pass --ours-only")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    peer = None
    if not args.ours_only:
        LOG.info("LeRobot gRPC peer (.venv-lerobot) ...")
        peer = bench_lerobot(args)
    latency = {}
    for payload in args.payloads.split(","):
        width, height = _parse_payload(payload)
        LOG.info("ours, %dx%d ...", width, height)
        latency[f"{width}x{height}"] = ours_latency(args, width, height)
    LOG.info("ours, throughput ...")
    throughput = ours_throughput(args, client_counts)
    result = assemble(args, latency, throughput, peer, client_counts)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

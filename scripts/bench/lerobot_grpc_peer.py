#!/usr/bin/env python
"""The real LeRobot (lerobot==0.4.4) gRPC async-inference transport, timed for the overhead bench.

Runs INSIDE .venv-lerobot (scripts/bench/setup_lerobot_venv.sh, which installs grpcio/protobuf
at the versions LeRobot's generated ``services_pb2*.py`` were built for) and imports nothing from
robot_learning. It prints exactly one JSON line on stdout (logs go to stderr).

What runs: LeRobot's own ``lerobot.async_inference.policy_server.PolicyServer`` servicer (its
``Ready``/``SendObservations``/``GetActions`` handlers unchanged: ``receive_bytes_in_chunks``,
``pickle.loads`` of the ``TimedObservation``, the FPS tracker, the single-slot observation queue,
``pickle.dumps`` of the ``TimedAction`` list) in a ``grpc.server`` with the 4-thread pool that its
``serve()`` builds, on 127.0.0.1. The client side is what ``RobotClient`` does for one chunk:
``pickle.dumps(TimedObservation)`` -> ``SendObservations(send_bytes_in_chunks(...))`` ->
``GetActions(Empty)`` -> ``pickle.loads`` of the ``TimedAction`` list, over a channel with
``grpc_channel_options`` (LeRobot's 4 MiB message limit, retries). Client and server share this
process for the latency rows, as our server thread and client do on our side; the throughput
row (closed loop, one client, ``--throughput-model-ms``) runs the client in a second process
(this script with ``--client-of ADDRESS``).

Deviations, all in LeRobot's favour or neutral:
  * No model: ``_predict_action_chunk`` is replaced by a fixed-cost stand-in (sleep
    ``--model-ms``, then a zero ``[chunk_len, action_dim]`` float32 tensor); only that part is
    "model time", measured per request and subtracted. The real method would also convert the
    raw observation to tensors (resize to the policy's image shape) and run the pre/post
    processors; none of that is counted. Splitting the chunk into ``TimedAction`` objects
    (LeRobot's own ``_time_action_chunk``) is the reply format and is counted as overhead.
  * ``SendPolicyInstructions`` (which loads a checkpoint with ``from_pretrained``) is not called;
    the attributes it sets (policy type, features, actions_per_chunk, device) are set directly.
  * ``inference_latency=0``: the server's default (1/30 s) pads every ``GetActions`` to 33 ms.
  * Every observation has ``must_go=True`` (what the client sends when its action queue is
    empty, i.e. when it waits for a chunk), so the similarity filter never drops it.
  * LeRobot's loggers are set to ``--log-level`` (default WARNING): its INFO lines per request
    would otherwise be formatted and written on every round trip.

  lerobot_grpc_peer.py [--payloads 96x96,640x480 --cameras 2 --state-dim 14 --chunk-len 50
                        --action-dim 14 --warmup 20 --repeats 300 --model-ms 0
                        --throughput-model-ms 5 --throughput-s 3 --log-level WARNING]
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import logging
import os
import pickle  # LeRobot's wire format; this peer measures it, our own stack never pickles
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from lerobot_peer import define_torchvision_schemas, emit  # same directory, same venv

LOG = logging.getLogger("lerobot_grpc_peer")


def _import_lerobot_async(log_level: str) -> dict[str, Any]:
    """Import LeRobot's async-inference modules from a scratch working directory.

    Importing ``policy_server`` creates ``logs/policy_server_<t>.log`` in the working directory
    (a class attribute calls ``get_logger``); keep that out of the repository.
    """
    scratch = tempfile.mkdtemp(prefix="lerobot_grpc_peer_")
    atexit.register(shutil.rmtree, scratch, True)
    os.chdir(scratch)
    define_torchvision_schemas()
    names = {
        "lerobot": "lerobot",
        "server": "lerobot.async_inference.policy_server",
        "configs": "lerobot.async_inference.configs",
        "helpers": "lerobot.async_inference.helpers",
        "pb2": "lerobot.transport.services_pb2",
        "pb2_grpc": "lerobot.transport.services_pb2_grpc",
        "utils": "lerobot.transport.utils",
        "datasets_utils": "lerobot.datasets.utils",
        "grpc": "grpc",
        "protobuf": "google.protobuf",
    }
    mods = {key: importlib.import_module(mod) for key, mod in names.items()}
    for name in ("", "policy_server", "lerobot"):  # init_logging set the root logger to INFO
        logging.getLogger(name).setLevel(log_level)
    return mods


def _parse_payload(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def joint_names(args: argparse.Namespace) -> list[str]:
    return [f"joint_{i}.pos" for i in range(args.state_dim)]


def camera_names(args: argparse.Namespace) -> list[str]:
    return [f"cam{i}" for i in range(args.cameras)]


def raw_observation(args: argparse.Namespace, width: int, height: int, rng: Any) -> dict[str, Any]:
    """What a LeRobot robot's get_observation() returns, plus the client's "task" key."""
    obs: dict[str, Any] = {name: float(rng.standard_normal()) for name in joint_names(args)}
    for cam in camera_names(args):
        obs[cam] = rng.integers(0, 256, size=(height, width, 3), dtype="uint8")
    obs["task"] = ""
    return obs


class Client:
    """The RobotClient side of one chunk: its channel options, stub and (de)serialization."""

    def __init__(self, mods: dict[str, Any], args: argparse.Namespace, address: str) -> None:
        self.mods = mods
        self.chunk_len = args.chunk_len
        self.channel = mods["grpc"].insecure_channel(
            address, mods["utils"].grpc_channel_options(initial_backoff=f"{1 / 30:.4f}s")
        )
        self.stub = mods["pb2_grpc"].AsyncInferenceStub(self.channel)
        self.stub.Ready(mods["pb2"].Empty())
        self.step = 0

    def round_trip(self, raw: dict[str, Any]) -> tuple[float, int, int, int]:
        """One chunk as RobotClient gets it; returns (rtt_ms, timestep, request B, reply B)."""
        pb2, utils = self.mods["pb2"], self.mods["utils"]
        self.step += 1
        step = self.step
        start = time.perf_counter()
        obs = self.mods["helpers"].TimedObservation(
            timestamp=time.time(), observation=raw, timestep=step, must_go=True
        )
        data = pickle.dumps(obs)
        self.stub.SendObservations(
            utils.send_bytes_in_chunks(
                data, pb2.Observation, log_prefix="[CLIENT] Observation", silent=True
            )
        )
        reply = self.stub.GetActions(pb2.Empty())
        actions = pickle.loads(reply.data)  # LeRobot's own reply format
        rtt_ms = (time.perf_counter() - start) * 1e3
        if len(actions) != self.chunk_len or actions[0].get_timestep() != step:
            raise RuntimeError(f"unexpected reply for observation {step}: {len(actions)} actions")
        return rtt_ms, step, len(data), len(reply.data)

    def close(self) -> None:
        self.channel.close()


class Bench:
    """LeRobot's PolicyServer with a fixed-cost stand-in model, served on 127.0.0.1."""

    def __init__(self, mods: dict[str, Any], args: argparse.Namespace) -> None:
        import torch

        self.mods = mods
        self.args = args
        self.model_ms: dict[int, float] = {}
        model_ms = self.model_ms

        class FixedCostPolicyServer(mods["server"].PolicyServer):  # type: ignore[misc]
            """LeRobot's PolicyServer whose model is a sleep plus a zero chunk."""

            model_s = 0.0

            def _predict_action_chunk(self, observation_t: Any) -> list[Any]:
                start = time.perf_counter()
                if self.model_s > 0:
                    time.sleep(self.model_s)
                actions = torch.zeros(args.chunk_len, args.action_dim, dtype=torch.float32)
                model_ms[observation_t.get_timestep()] = (time.perf_counter() - start) * 1e3
                self.last_processed_obs = observation_t
                chunk: list[Any] = self._time_action_chunk(
                    observation_t.get_timestamp(), list(actions), observation_t.get_timestep()
                )
                return chunk

        config = mods["configs"].PolicyServerConfig(
            host="127.0.0.1", port=8080, fps=30, inference_latency=0.0, obs_queue_timeout=2.0
        )
        self.servicer = FixedCostPolicyServer(config)
        self.server = mods["grpc"].server(futures.ThreadPoolExecutor(max_workers=4))  # as serve()
        mods["pb2_grpc"].add_AsyncInferenceServicer_to_server(self.servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{port}"

    def configure(self, width: int, height: int) -> None:
        """Set what SendPolicyInstructions would (without loading a checkpoint)."""
        hw: dict[str, Any] = {name: float for name in joint_names(self.args)}
        hw.update({cam: (height, width, 3) for cam in camera_names(self.args)})
        features = self.mods["datasets_utils"].hw_to_dataset_features(
            hw, "observation", use_video=False
        )
        self.servicer.policy_type = "act"
        self.servicer.lerobot_features = features
        self.servicer.actions_per_chunk = self.args.chunk_len
        self.servicer.device = "cpu"

    def stop(self) -> None:
        self.server.stop(grace=1.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    mods = _import_lerobot_async(args.log_level)
    bench = Bench(mods, args)
    rng = np.random.default_rng(args.seed)
    client = Client(mods, args, bench.address)
    latency: list[dict[str, Any]] = []
    try:
        for text in args.payloads.split(","):
            width, height = _parse_payload(text)
            bench.configure(width, height)
            bench.servicer.model_s = args.model_ms / 1e3
            raws = [raw_observation(args, width, height, rng) for _ in range(4)]
            rtts: list[float] = []
            models: list[float] = []
            sizes = (0, 0)
            for i in range(args.warmup + args.repeats):
                rtt, step, req, rep = client.round_trip(raws[i % len(raws)])
                model = bench.model_ms.pop(step)
                if i >= args.warmup:
                    rtts.append(rtt)
                    models.append(model)
                    sizes = (req, rep)
            latency.append(
                {
                    "payload": f"{width}x{height}",
                    "request_bytes": sizes[0],
                    "reply_bytes": sizes[1],
                    "rtt_ms": rtts,
                    "model_ms": models,
                }
            )
            LOG.info("%dx%d: %d round trips", width, height, len(rtts))
        client.close()
        throughput = _throughput(bench, rng, args)
    finally:
        bench.stop()
    return {
        "lerobot": mods["lerobot"].__version__,
        "grpcio": mods["grpc"].__version__,
        "protobuf": mods["protobuf"].__version__,
        "torch": torch.__version__,
        "server": "lerobot.async_inference.policy_server.PolicyServer (fixed-cost model)",
        "chunk_len": args.chunk_len,
        "action_dim": args.action_dim,
        "latency_model_ms": args.model_ms,
        "latency": latency,
        "throughput": throughput,
    }


def _throughput(bench: Bench, rng: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop, one client in its own process (LeRobot's server serves one robot)."""
    width, height = _parse_payload(args.payloads.split(",")[0])
    bench.configure(width, height)
    bench.servicer.model_s = args.throughput_model_ms / 1e3
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client-of", bench.address]
    cmd += ["--payloads", f"{width}x{height}", "--throughput-s", str(args.throughput_s)]
    cmd += ["--cameras", str(args.cameras), "--state-dim", str(args.state_dim)]
    cmd += ["--chunk-len", str(args.chunk_len), "--log-level", args.log_level]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    bench.model_ms.clear()
    if proc.returncode != 0:
        raise RuntimeError(f"throughput client failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"clients": 1, "model_ms": args.throughput_model_ms, **result}


def client_main(args: argparse.Namespace) -> dict[str, Any]:
    """``--client-of ADDRESS``: a closed loop of round trips for ``--throughput-s`` seconds."""
    import numpy as np

    client = Client(_import_lerobot_async(args.log_level), args, args.client_of)
    width, height = _parse_payload(args.payloads.split(",")[0])
    raw = raw_observation(args, width, height, np.random.default_rng(args.seed))
    for _ in range(5):
        client.round_trip(raw)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.throughput_s:
        client.round_trip(raw)
        count += 1
    elapsed = time.perf_counter() - start
    client.close()
    return {
        "payload": f"{width}x{height}",
        "requests": count,
        "seconds": elapsed,
        "requests_per_s": count / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", default="96x96,640x480", help="WxH per camera, comma list")
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--state-dim", type=int, default=14)
    parser.add_argument("--chunk-len", type=int, default=50)
    parser.add_argument("--action-dim", type=int, default=14)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--model-ms", type=float, default=0.0, help="stand-in model, latency runs")
    parser.add_argument("--throughput-model-ms", type=float, default=5.0)
    parser.add_argument("--throughput-s", type=float, default=3.0)
    parser.add_argument("--log-level", default="WARNING", help="LeRobot's loggers (INFO: its own)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client-of", default="", help=argparse.SUPPRESS)  # throughput client
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    emit(client_main(args) if args.client_of else run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

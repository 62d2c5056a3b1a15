"""Real-time chunk execution against a live policy server (wall clock, real sockets).

1. With 150 ms injected inference delay at 10 Hz, asynchronous requests with committed
   prefixes keep the action stream going (no stall after the first chunk, every action stamped
   for the tick it ran at), while naive wait-then-execute stalls at every chunk.
2. Killing the server process mid-episode on the MuJoCo sim: the loop holds (safety layer) in
   the next control period and resumes by itself when a server is back on the same port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from drivers.robots.sim import SimRobot
from robot_learning.policies.base import Policy
from robot_learning.policies.diffusion import DiffusionPolicy
from robot_learning.policies.diffusion_config import DiffusionConfig
from robot_learning.policies.diffusion_io import save_diffusion
from robot_learning.policies.normalizer import Normalizer
from robot_learning.serving.client import PolicyClient
from robot_learning.serving.control_loop import PolicyControlLoop
from robot_learning.serving.executor import ChunkExecutor, ExecutorConfig
from robot_learning.serving.runner import AsyncChunkRunner
from robot_learning.serving.safety import SafetyLayer
from robot_learning.serving.safety_config import SafetyConfig
from robot_learning.serving.server import PolicyServer
from robot_learning.serving.thread import ServerThread
from robot_learning.specs import FeatureSpec, SpecDict

PERIOD = 0.1
CHUNK, EXECUTE = 15, 8


def trajectory(tick: float) -> np.ndarray:
    return np.array([np.sin(0.1 * tick), 0.01 * tick], dtype=np.float32)


class TrajectoryPolicy(Policy):
    """Chunks continuing one known trajectory from the observed progress along it."""

    observation_spec = SpecDict({"tick": FeatureSpec((1,), "float32", "lowdim")})
    action_spec = SpecDict({"action": FeatureSpec((2,), "float32", "lowdim")})
    n_obs_steps = 2
    chunk_len = CHUNK
    n_action_steps = EXECUTE
    control_hz = 1 / PERIOD

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        ticks = np.asarray(obs["tick"])[:, -1, 0]
        return np.stack([np.stack([trajectory(t + j) for j in range(CHUNK)]) for t in ticks])


def run_stream(url: str, mode: str, ticks: int) -> tuple[list[np.ndarray | None], ChunkExecutor]:
    executor = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode=mode))  # type: ignore[arg-type]
    client = PolicyClient(url, request_timeout_s=2.0)
    client.connect()

    def infer(obs: Mapping[str, Any], prefix: np.ndarray | None) -> np.ndarray:
        return client.infer(obs, prefix=prefix).actions

    out: list[np.ndarray | None] = []
    progress = 0  # the "robot state": how many actions it has executed
    with AsyncChunkRunner(executor, infer, server_timeout_s=2.0) as runner:
        start = time.monotonic()
        for tick in range(ticks):
            time.sleep(max(0.0, start + tick * PERIOD - time.monotonic()))
            window = {"tick": np.array([[progress], [progress]], dtype=np.float32)}
            action = runner.step(tick, window)
            out.append(None if action is None else action.value)
            progress += action is not None
    client.close()
    return out, executor


def test_async_chunks_do_not_stall_under_150ms_delay() -> None:
    server = PolicyServer({"traj": TrajectoryPolicy()}, inject_delay_ms=150.0)
    with ServerThread(server) as thread:
        rtc, rtc_ex = run_stream(thread.url, "rtc", 50)
        naive, naive_ex = run_stream(thread.url, "naive", 50)
    first = next(t for t, a in enumerate(rtc) if a is not None)
    assert first >= 2  # 150 ms: the first chunk cannot be there before the second tick
    assert rtc_ex.stats.stalls == 0, rtc_ex.stats
    assert all(a is not None for a in rtc[first:])
    for stream in (rtc, naive):  # both continue the motion step by step, none skipped
        executed = [a for a in stream if a is not None]
        for step, action in enumerate(executed):
            np.testing.assert_allclose(action, trajectory(step), atol=1e-6)
    assert rtc_ex.latency_ticks() >= 2
    assert naive_ex.stats.stalls >= 2 * (naive_ex.stats.chunks - 1)
    assert naive_ex.stats.stalls >= 6


def test_a_deferred_request_waits_for_dispatch_and_builds_its_window_only_then() -> None:
    """A control loop sends its command before the next chunk's request is encoded; the window
    is built only for ticks that send a request, and a request never dispatched still goes out
    on the next step."""
    calls: list[tuple[float, int]] = []
    arrived = threading.Event()

    def infer(obs: Mapping[str, Any], prefix: np.ndarray | None) -> np.ndarray:
        calls.append((time.monotonic(), int(np.asarray(obs["tick"]).reshape(-1)[-1])))
        arrived.set()
        return np.zeros((CHUNK, 2), dtype=np.float32)

    built: list[int] = []

    def window_for(tick: int) -> Any:
        def build() -> dict[str, np.ndarray]:
            built.append(tick)
            return {"tick": np.full((2, 1), tick, dtype=np.float32)}

        return build

    executor = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE, mode="naive"))
    with AsyncChunkRunner(executor, infer, server_timeout_s=2.0) as runner:
        assert runner.step(0, window_for(0), defer_request=True) is None
        time.sleep(0.2)
        assert calls == [] and built == [], "nothing is encoded or sent before dispatch()"
        sent_at = time.monotonic()
        runner.dispatch()
        assert arrived.wait(2.0)
        assert calls[0][0] >= sent_at and calls[0][1] == 0 and built == [0]
        runner.dispatch()  # nothing staged: no second request
        time.sleep(0.1)
        for tick in range(1, EXECUTE + 1):  # the chunk arrives; no request due until EXECUTE
            assert runner.step(tick, window_for(tick), defer_request=True) is not None
            runner.dispatch()
        assert built == [0], "windows are built only for ticks that request"
        arrived.clear()
        runner.step(EXECUTE + 1, window_for(EXECUTE + 1), defer_request=True)  # due: staged
        assert not arrived.wait(0.1)
        runner.step(EXECUTE + 2, window_for(EXECUTE + 2))  # the staged one was never dispatched
        assert arrived.wait(2.0)
    assert [tick for _, tick in calls] == [0, EXECUTE + 1]


# ---- killing the server mid-episode ------------------------------------------------------------


def test_priming_keeps_the_first_action_for_the_first_tick() -> None:
    """Waiting for an episode's first chunk must not use up its first action: with tcp deltas
    a skipped step offsets the arm for the rest of the episode."""
    rows = np.zeros((CHUNK, 7), dtype=np.float32)
    rows[:, 0] = 0.002 * (np.arange(CHUNK) + 1)  # each step's dx differs: 2 mm, 4 mm, ...
    rows[:, 6] = 0.5

    def infer(obs: Mapping[str, Any], prefix: np.ndarray | None) -> np.ndarray:
        time.sleep(0.05)  # a server's latency
        return rows

    robot = SimRobot("lift", cameras=(), tactile=False, control_hz=10.0)
    executor = ChunkExecutor(ExecutorConfig(PERIOD, CHUNK, EXECUTE))
    safety = SafetyLayer(SafetyConfig.for_sim("ee_delta", 10.0))
    with robot, AsyncChunkRunner(executor, infer, server_timeout_s=2.0) as runner:
        loop = PolicyControlLoop(
            robot, runner, safety, robot.observation_spec(), 2, robot_time=lambda: robot.sim_time
        )
        loop.reset(seed=0)
        assert loop.prime(timeout_s=5.0)
        records = [loop.step() for _ in range(3)]
    assert [r.chunk for r in records] == [1, 1, 1], "no hold after priming"
    for tick, record in enumerate(records):
        np.testing.assert_allclose(record.command, rows[tick], atol=1e-6)
    assert safety.counts.get("no_action", 0) == 0


def tiny_sim_checkpoint(directory: Path) -> Path:
    """An untrained diffusion policy for sim:lift at 10 Hz whose actions are tiny deltas."""
    torch.manual_seed(0)
    config = DiffusionConfig(
        obs_keys=["ee_pos", "gripper_pos"],
        horizon=16,
        n_obs_steps=2,
        n_action_steps=8,
        unet_channels=[16, 32],
        step_embed_dim=16,
        inference_steps=4,
    )
    with SimRobot("lift", cameras=(), tactile=False, control_hz=10.0) as robot:
        spec = SpecDict({**robot.observation_spec().features, **robot.action_spec().features})
    small = [0.005] * 6 + [0.0]
    stats = {
        "ee_pos": {"min": [0.0, -0.5, 0.0], "max": [0.8, 0.5, 0.6]},
        "gripper_pos": {"min": [0.0], "max": [1.0]},
        "action": {"min": [-v for v in small], "max": small},
    }
    modes = {"ee_pos": "limits", "gripper_pos": "limits", "action": "limits"}
    normalizer = Normalizer.fit(stats, modes)  # type: ignore[arg-type]
    policy = DiffusionPolicy(config, spec, spec, normalizer, control_hz=10.0)
    save_diffusion(policy, directory)
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(checkpoint: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "robot_learning.cli", "serve", "--policy", str(checkpoint)]
    cmd += ["--port", str(port), "--device", "cpu", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_killed_server_means_hold_within_one_period_then_resume(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    checkpoint = tiny_sim_checkpoint(tmp_path / "ckpt")
    port = free_port()
    servers.append(start_server(checkpoint, port))
    wait_ready(port, servers[0])
    client = PolicyClient(
        f"ws://127.0.0.1:{port}", request_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.3
    )
    meta = client.connect()
    info = meta["policies"][meta["default_policy"]]
    obs_spec = SpecDict.from_json(info["observation_spec"])

    def infer(obs: Mapping[str, Any], prefix: np.ndarray | None) -> np.ndarray:
        return client.infer(obs, prefix=prefix).actions

    executor = ChunkExecutor(ExecutorConfig(PERIOD, info["chunk_len"], info["n_action_steps"]))
    robot = SimRobot("lift", cameras=(), tactile=False, control_hz=10.0, max_episode_steps=10_000)
    safety = SafetyLayer(SafetyConfig.for_sim("ee_delta", 10.0))
    kill_tick: int | None = None
    restart_tick: int | None = None
    with (
        robot,
        AsyncChunkRunner(
            executor, infer, server_timeout_s=0.5, connected=lambda: client.connected
        ) as runner,
    ):
        loop = PolicyControlLoop(
            robot, runner, safety, obs_spec, info["n_obs_steps"], robot_time=lambda: robot.sim_time
        )
        loop.reset(seed=0)

        def on_tick(record: Any) -> bool:
            nonlocal kill_tick, restart_tick
            if record.tick == 20:
                servers[0].send_signal(signal.SIGKILL)
                servers[0].wait(timeout=10)
                kill_tick = record.tick
            if record.tick == 30:
                servers.append(start_server(checkpoint, port))
                restart_tick = record.tick
            return restart_tick is not None and record.chunk is not None and record.server_ok

        records = loop.run(600, on_tick=on_tick)
    client.close()
    assert kill_tick is not None and restart_tick is not None
    before = records[5 : kill_tick + 1]
    assert all(r.chunk is not None for r in before), "the loop ran from chunks before the kill"
    held = [r for r in records if r.tick > kill_tick and r.chunk is None]
    assert held and held[0].tick == kill_tick + 1, "hold in the next control period"
    for r in held:
        np.testing.assert_array_equal(r.command[:6], 0.0)  # zero motion, gripper kept
    assert safety.counts["no_action"] >= len(held)
    resumed = records[-1]
    assert resumed.tick > restart_tick and resumed.chunk is not None and resumed.server_ok
    assert runner.server_lost_events == 1

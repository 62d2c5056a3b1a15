"""Fuzzing the policy server: >= 10,000 malformed messages while a real client keeps working.

The server runs in its own process, so its memory can be measured from outside. Every malformed
message must get an error reply (oversized ones: a clean 1009 close, after which the fuzzer
reconnects); a well-behaved client on another connection must get correct replies throughout;
and the server's resident memory must stay bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from robot_learning.serving.client import PolicyClient
from robot_learning.serving.protocol import ARRAY_EXT_CODE, ERROR_CODES, pack, unpack

REPO = Path(__file__).resolve().parents[1]
MAX_MESSAGE_BYTES = 256 * 1024
MALFORMED = 10_000
BATCH = 250  # messages pipelined before the replies are read
CONNECTIONS = 4
OVERSIZED_EVERY = 4  # batches
RSS_GROWTH_LIMIT = 50 * 2**20

SERVER_SCRIPT = """
import asyncio, sys
import numpy as np
from robot_learning.policies.base import Policy
from robot_learning.serving.server import PolicyServer
from robot_learning.specs import FeatureSpec, SpecDict

class SumPolicy(Policy):
    def __init__(self):
        self.observation_spec = SpecDict({
            "state": FeatureSpec((4,), "float32", "lowdim"),
            "image": FeatureSpec((8, 8, 3), "uint8", "rgb"),
            "task": FeatureSpec((), "str", "language"),
        })
        self.action_spec = SpecDict({"action": FeatureSpec((2,), "float32", "lowdim")})
        self.n_obs_steps, self.chunk_len, self.supports_prefix = 2, 3, True

    def predict_chunk(self, obs, prefix=None):
        value = np.asarray(obs["state"], np.float64).sum(axis=(1, 2))
        value += np.asarray(obs["image"], np.float64).mean(axis=(1, 2, 3, 4))
        value += np.array([len(t) for t in obs["task"]])
        return np.broadcast_to(value[:, None, None], (len(value), 3, 2)).astype(np.float32)

async def main():
    server = PolicyServer({"sum": SumPolicy()}, max_message_bytes=int(sys.argv[1]))
    await server.start()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await server.stop()

asyncio.run(main())
"""


def valid_obs(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "state": rng.normal(size=(2, 4)).astype(np.float32),
        "image": rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8),
        "task": "x" * int(rng.integers(0, 20)),
    }


def expected(obs: dict[str, Any]) -> np.ndarray:
    value = obs["state"].astype(np.float64).sum() + obs["image"].astype(np.float64).mean()
    return np.full((3, 2), value + len(obs["task"]), np.float32)


def raw_array(dtype: str, shape: Any, data: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(ARRAY_EXT_CODE, msgpack.packb([dtype, shape, data]))


def malformed(rng: np.random.Generator, request_id: int) -> bytes:
    """One message that must be refused; ``request_id`` is used where the message has an id."""
    obs = valid_obs(rng)
    kind = int(rng.integers(0, 10))
    if kind == 0:  # random bytes
        return rng.bytes(int(rng.integers(0, 300)))
    if kind == 1:  # valid msgpack, wrong types
        choices: list[Any] = [
            7,
            [1, 2],
            "infer",
            None,
            2.5,
            {},
            {"type": 5},
            {"type": ["infer"], "id": request_id},
            {"type": "infer", "id": "seven", "obs": obs},
            {"type": "infer", "id": request_id, "obs": [1, 2]},
            {"type": "infer", "id": request_id, "obs": obs, "policy": 3},
            {"type": "infer", "id": request_id, "obs": obs, "policy": "nope"},
            {"type": "ping", "id": 1.5},
            {"type": "shutdown", "id": request_id},
            {"type": "infer", "id": True, "obs": obs},
        ]
        return pack(choices[int(rng.integers(0, len(choices)))])
    if kind == 2:  # wrong dtypes
        key, bad = [
            ("state", obs["state"].astype(np.float64)),
            ("state", obs["state"].astype(np.int32)),
            ("image", obs["image"].astype(np.float32)),
            ("task", np.zeros(3, np.uint8)),
            ("image", "an image"),
        ][int(rng.integers(0, 5))]
        return pack({"type": "infer", "id": request_id, "obs": {**obs, key: bad}})
    if kind == 3:  # wrong shapes
        key, bad = [
            ("state", np.zeros((3, 4), np.float32)),
            ("state", np.zeros((4,), np.float32)),
            ("state", np.zeros((2, 5), np.float32)),
            ("image", np.zeros((2, 8, 8, 4), np.uint8)),
            ("image", np.zeros((1, 1, 2, 8, 8, 3), np.uint8)),
        ][int(rng.integers(0, 5))]
        return pack({"type": "infer", "id": request_id, "obs": {**obs, key: bad}})
    if kind == 4:  # NaN / Inf in an observation or the prefix
        bad_value = [np.nan, np.inf, -np.inf][int(rng.integers(0, 3))]
        if rng.random() < 0.5:
            obs["state"][int(rng.integers(0, 2)), int(rng.integers(0, 4))] = bad_value
            return pack({"type": "infer", "id": request_id, "obs": obs})
        prefix = np.zeros((2, 2), np.float32)
        prefix[1, 0] = bad_value
        return pack({"type": "infer", "id": request_id, "obs": obs, "prefix": prefix})
    if kind == 5:  # truncated
        whole = pack({"type": "infer", "id": request_id, "obs": obs})
        return whole[: int(rng.integers(0, len(whole)))]
    if kind == 6:  # missing fields
        message: dict[str, Any] = {"type": "infer", "id": request_id, "obs": obs}
        drop = ["type", "id", "obs", "state", "image", "task"][int(rng.integers(0, 6))]
        if drop in message:
            del message[drop]
        else:
            del obs[drop]
        return pack(message)
    if kind == 7:  # huge declared shapes, small payloads; other broken array headers
        ext = [
            raw_array("|u1", [2**40, 2**40], b"\x00" * 8),
            raw_array("<f4", [2**64 - 1], b"\x00" * 4),
            raw_array("<f4", [2, 4], b"\x00" * 31),
            raw_array("<f4", [1] * 9, b"\x00" * 4),
            raw_array("<f4", [-2, 4], b"\x00" * 32),
            raw_array("|O", [2, 4], b"\x00" * 64),
            raw_array(">f4", [2, 4], b"\x00" * 32),
            msgpack.ExtType(ARRAY_EXT_CODE, b"\x93\xa3<f4"),
            msgpack.ExtType(9, b"\x00"),
        ][int(rng.integers(0, 9))]
        return pack({"type": "infer", "id": request_id, "obs": {**obs, "state": ext}})
    if kind == 8:  # deeply nested maps / lists, some deeper than the decoder allows
        depth = int(rng.integers(10, 3000))
        inner = (b"\x81\xa1a" if rng.random() < 0.5 else b"\x91") * depth + b"\xc0"
        head = msgpack.packb({"type": "infer", "id": request_id})
        return b"\x83" + head[1:] + b"\xa3obs" + inner  # {"type", "id", "obs": <nested>}
    # prefix of the wrong shape, or longer than the chunk
    prefix = np.zeros([(2, 3), (4, 2), (3,)][int(rng.integers(0, 3))], np.float32)
    return pack({"type": "infer", "id": request_id, "obs": obs, "prefix": prefix})


def oversized(rng: np.random.Generator) -> bytes:
    return rng.bytes(MAX_MESSAGE_BYTES + int(rng.integers(1, 100_000)))


def open_connection(url: str) -> ClientConnection:
    ws = connect(url, compression=None, max_size=None, max_queue=None, legacy=True)
    assert unpack(ws.recv(10, decode=False))["type"] == "metadata"
    return ws


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    script = tmp_path / "fuzz_server.py"
    script.write_text(SERVER_SCRIPT)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(MAX_MESSAGE_BYTES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield proc, port
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # asks the server to stop
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_malformed_messages_never_disturb_a_valid_client(
    server_process: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = server_process
    url = f"ws://127.0.0.1:{port}"
    rng = np.random.default_rng(20240607)
    done = threading.Event()
    good: list[int] = []
    failures: list[str] = []

    def valid_client() -> None:
        client_rng = np.random.default_rng(7)
        with PolicyClient(url, request_timeout_s=10.0) as client:
            while not done.is_set():
                obs = valid_obs(client_rng)
                try:
                    actions = client.infer(obs).actions
                    np.testing.assert_allclose(actions, expected(obs), rtol=1e-5, atol=1e-5)
                    good.append(1)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.002)

    checker = threading.Thread(target=valid_client, daemon=True)
    checker.start()
    connections = [open_connection(url) for _ in range(CONNECTIONS)]
    server = psutil.Process(proc.pid)
    rss_after_warmup = 0
    sent = replied = closes = 0
    start = time.monotonic()
    try:
        for batch_index in range(MALFORMED // BATCH):
            slot = batch_index % CONNECTIONS
            ws = connections[slot]
            first_id = batch_index * BATCH
            messages = [malformed(rng, first_id + i) for i in range(BATCH)]
            for data in messages:
                ws.send(data)
            sent += len(messages)
            for _ in messages:
                reply = unpack(ws.recv(30, decode=False))
                assert reply["type"] == "error" and reply["code"] in ERROR_CODES, reply
                assert isinstance(reply["message"], str) and reply["message"]
                replied += 1
            if batch_index % OVERSIZED_EVERY == OVERSIZED_EVERY - 1:
                ws.send(oversized(rng))
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(30, decode=False)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
                closes += 1
                connections[slot] = open_connection(url)  # reconnect and go on
            if batch_index == 3:
                rss_after_warmup = server.memory_info().rss
        elapsed = time.monotonic() - start
        rss_end = server.memory_info().rss
    finally:
        done.set()
        checker.join(30)
        for ws in connections:
            ws.close()
    assert sent == replied >= MALFORMED
    assert closes == MALFORMED // BATCH // OVERSIZED_EVERY
    assert not failures, failures[:5]
    assert len(good) >= 20, f"the valid client got only {len(good)} replies in {elapsed:.1f} s"
    growth = rss_end - rss_after_warmup
    assert growth < RSS_GROWTH_LIMIT, f"server RSS grew by {growth / 2**20:.1f} MiB"
    assert proc.poll() is None  # still serving

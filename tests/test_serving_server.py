"""Policy server, client and RemotePolicy over real websockets on loopback.

The policies here are tiny and deterministic (actions computed from the observation), so every
reply can be checked against what that robot sent, whatever batch it landed in.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import importlib.util
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from robot_learning.policies.base import Policy
from robot_learning.serving.client import PolicyClient, ServerError, ServerUnavailable
from robot_learning.serving.protocol import pack, unpack
from robot_learning.serving.remote_policy import RemotePolicy
from robot_learning.serving.server import PolicyServer
from robot_learning.serving.thread import ServerThread
from robot_learning.specs import FeatureSpec, SpecDict, SpecError

REPO = Path(__file__).resolve().parents[1]
BOOM = -666.0  # a state value that makes MeanPolicy raise
GATE = -777.0  # a state value that makes MeanPolicy wait for its gate


class MeanPolicy(Policy):
    """``actions[b, t, a] = mean(state[b]) + mean(image[b]) / 255 + a + 0.1 t``; then the
    committed (non-NaN) prefix entries are copied in, as an inpainting policy would do."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.observation_spec = SpecDict(
            {
                "state": FeatureSpec((4,), "float32", "lowdim"),
                "image": FeatureSpec((6, 8, 3), "uint8", "rgb"),
            }
        )
        self.action_spec = SpecDict({"action": FeatureSpec((3,), "float32", "lowdim")})
        self.n_obs_steps = 2
        self.chunk_len = 5
        self.n_action_steps = 3
        self.control_hz = 10.0
        self.supports_prefix = True
        self.delay_s = delay_s
        self.gate = threading.Event()
        self.calls: list[tuple[np.ndarray, np.ndarray | None]] = []

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        self.check_batch(obs)
        state = np.asarray(obs["state"])
        self.calls.append((state.copy(), None if prefix is None else prefix.copy()))
        if np.any(state == BOOM):
            raise RuntimeError("boom: poisoned observation")
        if np.any(state == GATE):
            self.gate.wait(10.0)
        if self.delay_s:
            time.sleep(self.delay_s)
        return mean_actions(state, np.asarray(obs["image"]), prefix)


def mean_actions(state: np.ndarray, image: np.ndarray, prefix: np.ndarray | None) -> np.ndarray:
    base = state.mean(axis=(1, 2)) + image.mean(axis=(1, 2, 3, 4)) / 255.0
    out = base[:, None, None] + np.arange(3.0)[None, None, :] + 0.1 * np.arange(5.0)[None, :, None]
    if prefix is not None:
        head = out[:, : prefix.shape[1]]
        out[:, : prefix.shape[1]] = np.where(np.isnan(prefix), head, prefix)
    return out.astype(np.float32)


def expected(window: Mapping[str, np.ndarray], prefix: np.ndarray | None = None) -> np.ndarray:
    """What MeanPolicy answers for one robot's window."""
    batched_prefix = None if prefix is None else prefix[None]
    return mean_actions(window["state"][None], window["image"][None], batched_prefix)[0]


class LanguagePolicy(Policy):
    """A language-conditioned stand-in: ``actions = len(task) + sum(state)``."""

    def __init__(self) -> None:
        self.observation_spec = SpecDict(
            {
                "task": FeatureSpec((), "str", "language"),
                "state": FeatureSpec((2,), "float32", "lowdim"),
            }
        )
        self.action_spec = SpecDict({"grip": FeatureSpec((1,), "float32", "lowdim")})
        self.chunk_len = 2

    def predict_chunk(self, obs: Mapping[str, Any], prefix: np.ndarray | None = None) -> np.ndarray:
        lengths = np.array([len(t) for t in obs["task"]], np.float32)
        value = lengths + np.asarray(obs["state"]).sum(axis=(1, 2))
        return np.repeat(value[:, None, None], 2, axis=1).astype(np.float32)


def window(value: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = np.full((2, 4), value, np.float32) + rng.uniform(0, 1, (2, 4)).astype(np.float32)
    return {"state": state, "image": rng.integers(0, 256, (2, 6, 8, 3), dtype=np.uint8)}


def http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def metric(text: str, series: str) -> float:
    """The value of one series (``name{labels}``) in Prometheus text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metadata_handshake_ping_and_spec_check() -> None:
    policies: dict[str, Policy] = {"mean": MeanPolicy(), "lang": LanguagePolicy()}
    server = PolicyServer(policies, max_batch=4, model_hashes={"mean": "abc123"})
    with ServerThread(server) as thread, PolicyClient(thread.url) as client:
        meta = client.connect()
        assert meta["type"] == "metadata" and meta["protocol"] == 1
        assert meta["server"].startswith("robot_learning ")
        assert meta["default_policy"] == "mean" and list(meta["policies"]) == ["mean", "lang"]
        assert meta["limits"] == {"max_message_bytes": 64 * 2**20, "max_batch": 4}
        info = meta["policies"]["mean"]
        assert SpecDict.from_json(info["observation_spec"]) == policies["mean"].observation_spec
        assert SpecDict.from_json(info["action_spec"]) == policies["mean"].action_spec
        assert (info["n_obs_steps"], info["chunk_len"], info["n_action_steps"]) == (2, 5, 3)
        assert info["control_hz"] == 10.0 and info["supports_prefix"] is True
        assert info["policy_type"] == "MeanPolicy" and info["model_hash"] == "abc123"
        lang = meta["policies"]["lang"]
        assert lang["model_hash"] is None and lang["supports_prefix"] is False
        assert lang["observation_spec"]["task"]["kind"] == "language"
        assert 0 < client.ping() < 1000
        mean = policies["mean"]
        client.check_specs(mean.observation_spec, mean.action_spec)
        robot_obs = SpecDict({"state": mean.observation_spec["state"]})
        with pytest.raises(SpecError, match="'image'"):
            client.check_specs(robot_obs, mean.action_spec)
        wide = SpecDict({"action": FeatureSpec((4,), "float32", "lowdim")})
        with pytest.raises(SpecError, match="'action'"):
            client.check_specs(mean.observation_spec, wide)
        # language features travel as str; the policy sees a list of B strings
        with PolicyClient(thread.url, policy="lang") as lang_client:
            state = np.array([[0.5, 0.25]], np.float32)
            reply = lang_client.infer({"task": "pick the red cube", "state": state})
            np.testing.assert_allclose(reply.actions, np.full((2, 1), 17.75, np.float32))


def test_concurrent_clients_get_their_own_results_under_batching() -> None:
    policy = MeanPolicy(delay_s=0.02)
    clients, requests = 4, 8
    results: list[tuple[np.ndarray, np.ndarray, dict[str, float]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(clients)
    with ServerThread(PolicyServer({"mean": policy}, max_batch=8, max_wait_ms=5)) as thread:

        def robot(k: int) -> None:
            try:
                with PolicyClient(thread.url, request_timeout_s=10) as client:
                    client.connect()
                    start.wait()
                    for i in range(requests):
                        obs = window(10.0 * k + i, seed=100 * k + i)
                        reply = client.infer(obs)
                        results.append((reply.actions, expected(obs), reply.timing))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=robot, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        _, _, text = http_get(thread.http_url + "/metrics")
    assert not errors, errors
    assert len(results) == clients * requests
    for actions, want, timing in results:
        assert actions.dtype == np.float32 and actions.shape == (5, 3)
        np.testing.assert_allclose(actions, want, rtol=1e-6)
        assert timing["infer_ms"] >= 20.0 and timing["server_ms"] >= timing["infer_ms"]
        assert timing["queue_ms"] >= 0.0
    sizes = [len(state) for state, _ in policy.calls]
    assert max(timing["batch_size"] for *_, timing in results) > 1
    assert max(sizes) > 1 and sum(sizes) == clients * requests
    assert all(prefix is None for _, prefix in policy.calls)  # nobody sent one
    count = metric(text, 'robot_learning_batch_size_count{policy="mean"}')
    singles = metric(text, 'robot_learning_batch_size_bucket{policy="mean",le="1"}')
    assert count == len(sizes) and count - singles > 0
    assert metric(text, 'robot_learning_requests_total{policy="mean"}') == clients * requests
    assert metric(text, 'robot_learning_request_seconds_count{policy="mean"}') == len(results)


def test_prefixes_of_different_lengths_are_nan_padded_in_one_batch() -> None:
    policy = MeanPolicy()
    server = PolicyServer({"mean": policy}, max_batch=8)
    replies: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    short_prefix = rng.normal(size=(1, 3)).astype(np.float32)
    long_prefix = rng.normal(size=(3, 3)).astype(np.float32)
    prefixes = {"short": short_prefix, "long": long_prefix, "none": None}
    values = {"blocker": GATE, "short": 1.0, "long": 2.0, "none": 3.0}
    with ServerThread(server) as thread:

        def robot(name: str) -> None:
            with PolicyClient(thread.url, request_timeout_s=10) as client:
                obs = window(values[name])
                if name == "blocker":
                    obs["state"][:] = GATE
                replies[name] = (client.infer(obs, prefix=prefixes.get(name)), obs)

        blocker = threading.Thread(target=robot, args=("blocker",))
        blocker.start()
        wait_until(lambda: len(policy.calls) == 1)  # the model is busy with the blocker
        others = [threading.Thread(target=robot, args=(n,)) for n in ("short", "long", "none")]
        for t in others:
            t.start()
        wait_until(lambda: server.metrics.requests.get("mean") == 4)  # all three queued
        policy.gate.set()
        for t in [blocker, *others]:
            t.join(20)
    assert len(policy.calls) == 2
    state, prefix = policy.calls[1]
    assert prefix is not None and prefix.shape == (3, 3, 3) and prefix.dtype == np.float32
    rows = {int(np.floor(s.min())): i for i, s in enumerate(state)}  # state value -> batch row
    short, long, none = prefix[rows[1]], prefix[rows[2]], prefix[rows[3]]
    np.testing.assert_array_equal(short[0], short_prefix[0])
    assert np.isnan(short[1:]).all()
    np.testing.assert_array_equal(long, long_prefix)
    assert np.isnan(none).all()
    for name in ("short", "long", "none"):
        reply, obs = replies[name]
        want = expected(obs, prefixes[name])
        np.testing.assert_allclose(reply.actions, want, rtol=1e-6)
        assert reply.timing["batch_size"] == 3


def test_bad_requests_get_errors_naming_the_feature_and_the_connection_keeps_working() -> None:
    policy = MeanPolicy()
    server = PolicyServer({"mean": policy})
    good = window(1.0)
    nan_state = good["state"].copy()
    nan_state[1, 2] = np.nan
    cases: list[tuple[dict[str, Any], Any, str, str]] = [
        ({**good, "state": good["state"][:, :3]}, None, "spec_mismatch", r"'state'.*\(2, 4\)"),
        ({**good, "state": good["state"].astype(np.float64)}, None, "spec_mismatch", "float32"),
        ({"state": good["state"]}, None, "spec_mismatch", "lacks feature 'image'"),
        ({**good, "bogus": np.zeros(2)}, None, "spec_mismatch", "bogus"),
        ({**good, "state": nan_state}, None, "spec_mismatch", "'state' contains NaN"),
        ({**good, "image": "a picture"}, None, "spec_mismatch", "'image' must be an array"),
        (good, np.zeros((2, 4)), "bad_request", r"prefix.*\[P, 3\]"),
        (good, np.zeros((6, 3)), "bad_request", r"chunk_len \(5\)"),
        (good, np.full((1, 3), np.inf), "bad_request", "prefix.*NaN or Inf"),
    ]
    with ServerThread(server) as thread, PolicyClient(thread.url) as client:
        client.connect()
        for obs, prefix, code, pattern in cases:
            with pytest.raises(ServerError) as info:
                client.infer(obs, prefix=prefix)
            assert info.value.code == code, info.value
            assert re.search(pattern, info.value.message), info.value.message
            np.testing.assert_allclose(client.infer(good).actions, expected(good), rtol=1e-6)
        with PolicyClient(thread.url, policy="nope") as stranger:
            with pytest.raises(ServerError) as info:
                stranger.infer(good)
            assert info.value.code == "unknown_policy"
            assert "'nope'" in info.value.message and "mean" in info.value.message
        # malformed messages on a raw connection: each gets an error, the connection stays up
        with connect(thread.url, compression=None) as ws:
            assert unpack(ws.recv(5, decode=False))["type"] == "metadata"
            raw: list[tuple[Any, Any, str]] = [
                (pack([1, 2, 3]), None, "bad_message"),
                ("a text frame", None, "bad_message"),
                (b"\xc1\x00", None, "bad_message"),
                (pack({"type": "launch", "id": 5}), 5, "bad_message"),
                (pack({"type": "infer", "obs": good}), None, "bad_request"),
                (pack({"type": "infer", "id": 7, "obs": [1]}), 7, "bad_request"),
                (pack({"type": "infer", "id": 8, "obs": good, "policy": 3}), 8, "unknown_policy"),
                (
                    pack(
                        {"type": "infer", "id": 10, "obs": good, "prefix": np.zeros((1, 3), "i4")}
                    ),
                    10,
                    "bad_request",
                ),
                (pack({"type": "ping"}), None, "bad_request"),
            ]
            for data, request_id, code in raw:
                ws.send(data)
                reply = unpack(ws.recv(5, decode=False))
                assert reply["type"] == "error" and reply["code"] == code, reply
                assert reply["id"] == request_id and reply["message"]
            ws.send(pack({"type": "infer", "id": 9, "obs": good}))
            reply = unpack(ws.recv(5, decode=False))
            assert reply["type"] == "actions" and reply["id"] == 9
            np.testing.assert_allclose(reply["actions"], expected(good), rtol=1e-6)
        wait_until(lambda: server.metrics.connected_clients.get() == 1)  # no reconnects
        assert server.metrics.errors.get("spec_mismatch") == 6
        assert len(policy.calls) == len(cases) + 1  # no malformed request reached the model


def test_model_exception_gives_internal_error_and_the_server_keeps_serving() -> None:
    with ServerThread(PolicyServer({"mean": MeanPolicy()})) as thread:
        with PolicyClient(thread.url) as client:
            poisoned = window(1.0)
            poisoned["state"][0, 0] = BOOM
            with pytest.raises(ServerError) as info:
                client.infer(poisoned)
            assert info.value.code == "internal" and "boom" in info.value.message
            good = window(2.0)
            np.testing.assert_allclose(client.infer(good).actions, expected(good), rtol=1e-6)
        with PolicyClient(thread.url) as other:
            np.testing.assert_allclose(other.infer(good).actions, expected(good), rtol=1e-6)
        _, _, text = http_get(thread.http_url + "/metrics")
    assert metric(text, 'robot_learning_errors_total{code="internal"}') == 1


def test_overload_and_oversized_messages_are_refused() -> None:
    policy = MeanPolicy(delay_s=0.3)
    server = PolicyServer({"mean": policy}, max_pending=2, max_message_bytes=20_000)
    with ServerThread(server) as thread:
        with PolicyClient(thread.url, request_timeout_s=10) as client:
            with pytest.raises(ServerError) as info:
                client.infer_many([window(float(i)) for i in range(5)])
            assert info.value.code == "overloaded" and "max_pending" in info.value.message
        assert server.metrics.rejected.get("overloaded") == 3
        with connect(thread.url, compression=None, max_size=None) as ws:
            ws.recv(timeout=5)
            ws.send(b"\x00" * 30_000)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        wait_until(lambda: server.metrics.rejected.get("too_large") == 1)
        with PolicyClient(thread.url) as client:  # still serving
            good = window(3.0)
            np.testing.assert_allclose(client.infer(good).actions, expected(good), rtol=1e-6)


def test_healthz_and_metrics_endpoints() -> None:
    with ServerThread(PolicyServer({"mean": MeanPolicy()}, token="t0k3n")) as thread:
        status, _, body = http_get(thread.http_url + "/healthz")
        assert (status, body) == (200, "ok\n")
        with PolicyClient(thread.url, token="t0k3n") as client:
            client.infer(window(1.0))
            with pytest.raises(ServerError):
                client.infer({"state": np.zeros(3)})
            assert server_gauge(thread.http_url) == 1
        with pytest.raises(ServerUnavailable):
            PolicyClient(thread.url).connect()
        status, content_type, text = http_get(thread.http_url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    for name in (
        "robot_learning_requests_total",
        "robot_learning_errors_total",
        "robot_learning_rejected_total",
        "robot_learning_inference_seconds",
        "robot_learning_batch_size",
        "robot_learning_connected_clients",
        "robot_learning_request_seconds",
    ):
        assert f"# TYPE {name} " in text
    assert metric(text, 'robot_learning_requests_total{policy="mean"}') == 2
    assert metric(text, 'robot_learning_errors_total{code="spec_mismatch"}') == 1
    assert metric(text, 'robot_learning_rejected_total{reason="auth"}') == 1
    assert metric(text, 'robot_learning_inference_seconds_count{policy="mean"}') == 1
    assert metric(text, 'robot_learning_inference_seconds_bucket{policy="mean",le="+Inf"}') == 1


def server_gauge(http_url: str) -> float:
    _, _, text = http_get(http_url + "/metrics")
    return metric(text, "robot_learning_connected_clients")


def test_token_is_required_on_the_websocket_upgrade() -> None:
    server = PolicyServer({"mean": MeanPolicy()}, token="s3cret")
    with ServerThread(server) as thread:
        for token in (None, "wrong", "s3cret-but-longer"):
            with pytest.raises(ServerUnavailable) as info:
                PolicyClient(thread.url, token=token).connect()
            assert info.value.http_status == 401
        with PolicyClient(thread.url, token="s3cret") as client:
            good = window(1.0)
            np.testing.assert_allclose(client.infer(good).actions, expected(good), rtol=1e-6)
        assert http_get(thread.http_url + "/healthz")[0] == 200  # no token needed
    assert server.metrics.rejected.get("auth") == 3


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost: with the cryptography package, else openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if importlib.util.find_spec("cryptography") is not None:
        self_signed_with_cryptography(cert, key)
        return cert, key
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl command line tool exists")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def self_signed_with_cryptography(cert_path: Path, key_path: Path) -> None:
    # imported by name: the package is optional, and mypy must not require it
    x509 = importlib.import_module("cryptography.x509")
    hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
    ec = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ec")
    serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    with ServerThread(PolicyServer({"mean": MeanPolicy()}, ssl_context=server_context)) as thread:
        assert thread.url.startswith("wss://127.0.0.1:")
        with PolicyClient(thread.url, ssl_context=client_context) as client:
            good = window(1.0)
            np.testing.assert_allclose(client.infer(good).actions, expected(good), rtol=1e-6)
        assert http_get(thread.http_url + "/healthz", client_context)[0] == 200
        with pytest.raises(ServerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            PolicyClient(thread.url, ssl_context=ssl.create_default_context()).connect()
        with pytest.raises(ServerUnavailable):  # plain ws:// to a TLS port
            PolicyClient(thread.url.replace("wss://", "ws://"), connect_timeout_s=2).connect()


def test_remote_policy_matches_the_local_policy() -> None:
    local = MeanPolicy()
    obs = {
        "state": np.stack([window(float(i), seed=i)["state"] for i in range(3)]),
        "image": np.stack([window(float(i), seed=i)["image"] for i in range(3)]),
        "unused_by_policy": np.zeros((3, 2, 5), np.float32),
    }
    prefix = np.full((3, 4, 3), np.nan, np.float32)
    prefix[0, :2] = 7.0
    prefix[2, :4] = -1.5
    with ServerThread(PolicyServer({"mean": MeanPolicy(), "lang": LanguagePolicy()})) as thread:
        remote = RemotePolicy(PolicyClient(thread.url))
        assert remote.observation_spec == local.observation_spec
        assert remote.action_spec == local.action_spec and remote.action_dim == 3
        assert (remote.n_obs_steps, remote.chunk_len, remote.n_action_steps) == (2, 5, 3)
        assert remote.control_hz == 10.0 and remote.supports_prefix
        for p in (None, prefix):
            got = remote.predict_chunk(obs, p)
            assert got.shape == (3, 5, 3) and got.dtype == np.float32
            np.testing.assert_allclose(got, local.predict_chunk(obs, p), rtol=1e-6)
        lang = RemotePolicy(PolicyClient(thread.url, policy="lang"))
        tasks = ["a", "bb", "ccc"]
        lang_obs = {"task": tasks, "state": np.ones((3, 1, 2), np.float32)}
        want = LanguagePolicy().predict_chunk(lang_obs)
        np.testing.assert_allclose(lang.predict_chunk(lang_obs), want)
        remote.client.close()
        lang.client.close()


def test_client_reconnects_with_backoff_after_the_server_restarts() -> None:
    good = window(1.0)
    first = ServerThread(PolicyServer({"mean": MeanPolicy()})).start()
    port = first.port
    client = PolicyClient(
        first.url, request_timeout_s=1.0, backoff_initial_s=0.2, backoff_max_s=0.4
    )
    client.infer(good)
    first.stop()  # closes every connection (1001) and the listening socket
    start = time.monotonic()
    with pytest.raises(ServerUnavailable):
        client.infer(good)
    assert time.monotonic() - start < 1.0  # within request_timeout_s
    start = time.monotonic()
    with pytest.raises(ServerUnavailable, match="next reconnect attempt"):
        client.infer(good)  # inside the backoff delay: fails at once, no connection attempt
    assert time.monotonic() - start < 0.05
    with ServerThread(PolicyServer({"mean": MeanPolicy()}, port=port)) as thread:
        assert thread.port == port
        deadline = time.monotonic() + 5.0
        reply = None
        while reply is None and time.monotonic() < deadline:
            try:
                reply = client.infer(good)
            except ServerUnavailable:
                time.sleep(0.02)
        assert reply is not None
        np.testing.assert_allclose(reply.actions, expected(good), rtol=1e-6)
    client.close()


def tiny_diffusion_checkpoint(directory: Path) -> Path:
    from robot_learning.policies.diffusion import DiffusionPolicy, normalization_modes
    from robot_learning.policies.diffusion_config import DiffusionConfig
    from robot_learning.policies.diffusion_io import save_diffusion
    from robot_learning.policies.normalizer import Normalizer

    config = DiffusionConfig(
        obs_keys=["ee_pos"],
        n_obs_steps=2,
        horizon=8,
        n_action_steps=4,
        unet_channels=[16, 32],
        step_embed_dim=16,
        inference_steps=2,
    )
    obs_spec = SpecDict({"ee_pos": FeatureSpec((3,), "float32", "lowdim")})
    action_spec = SpecDict({"action": FeatureSpec((4,), "float32", "lowdim")})

    def stats(n: int) -> dict[str, list[float]]:
        return {"min": [-1.0] * n, "max": [1.0] * n, "mean": [0.0] * n, "std": [1.0] * n}

    normalizer = Normalizer.fit(
        {"ee_pos": stats(3), "action": stats(4)}, normalization_modes(obs_spec, config)
    )
    policy = DiffusionPolicy(config, obs_spec, action_spec, normalizer, control_hz=10.0)
    return save_diffusion(policy, directory)


def test_serve_command_runs_as_a_process_until_sigterm(tmp_path: Path) -> None:
    from robot_learning.policies import load_policy

    ckpt = tiny_diffusion_checkpoint(tmp_path / "tiny")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot_learning.cli", "serve", "--policy", f"tiny={ckpt}"]
        + ["--port", str(port), "--max-wait-ms", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.2)
        obs = {"ee_pos": np.array([[0.1, -0.2, 0.3], [0.2, -0.1, 0.4]], np.float32)}
        with PolicyClient(f"ws://127.0.0.1:{port}", request_timeout_s=30) as client:
            info = client.policy_info()
            reply = client.infer(obs)
        digest = hashlib.sha256(
            (ckpt / "model.safetensors").read_bytes() + (ckpt / "config.json").read_bytes()
        ).hexdigest()
        assert info["model_hash"] == digest and info["policy_type"] == "DiffusionPolicy"
        assert info["chunk_len"] == 7 and reply.actions.shape == (7, 4)
        local = load_policy(ckpt)
        local.reset()
        want = local.predict_chunk({"ee_pos": obs["ee_pos"][None]})[0]
        np.testing.assert_allclose(reply.actions, want, rtol=1e-4, atol=1e-5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert f"serving tiny on ws://127.0.0.1:{port}" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

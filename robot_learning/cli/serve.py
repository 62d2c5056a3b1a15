"""``robot-learning serve``: serve policy checkpoints over websocket + msgpack.

Robots (``PolicyClient`` / ``RemotePolicy``), the evaluator (``eval --server``) and the ROS 2
nodes connect to ws://HOST:PORT (wss:// with --tls-cert/--tls-key). The same port answers
``GET /healthz`` (200 when ready) and ``GET /metrics`` (Prometheus text). Runs until SIGINT or
SIGTERM, then closes every connection and exits 0. Protocol and options: docs/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robot_learning.cli import CLIError, non_negative_float, positive_int
from robot_learning.cli.eval import check_policy_dir

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy
    from robot_learning.serving.server import PolicyServer

LOG = logging.getLogger(__name__)
DEFAULT_PORT = 8765


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve policy checkpoints to robots over websocket + msgpack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="checkpoint directory; repeat to serve several (named NAME, default: the "
        "directory's name); the first is the default policy",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--token-file", metavar="F", help="require 'Authorization: Bearer <token>'")
    p.add_argument("--tls-cert", metavar="C", help="TLS certificate chain (PEM): serve wss://")
    p.add_argument("--tls-key", metavar="K", help="TLS private key (PEM)")
    p.add_argument("--max-batch", type=positive_int, default=8, help="requests per model call")
    p.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=2.0,
        help="longest wait for more requests to fill a batch (default 2)",
    )
    p.add_argument(
        "--inject-delay-ms",
        type=non_negative_float,
        default=0.0,
        help="latency experiments only: sleep this long per batch, as a slower model would",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where models run")
    p.set_defaults(handler=run)


def parse_policies(values: list[str]) -> dict[str, Path]:
    """``[NAME=]DIR`` arguments -> ordered name -> checkpoint directory."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).resolve().name, value
        if not name or not path:
            raise CLIError(f"--policy {value!r}: expected DIR or NAME=DIR")
        if name in out:
            raise CLIError(f"--policy: the name {name!r} is used twice; give NAME=DIR")
        out[name] = check_policy_dir(path)
    return out


def model_hash(directory: Path) -> str:
    """sha256 over the checkpoint's model.safetensors, then its config.json."""
    digest = hashlib.sha256()
    for filename in ("model.safetensors", "config.json"):
        with open(directory / filename, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_token(path: str) -> str:
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise CLIError(f"--token-file {path}: {exc.strerror or exc}") from None
    if not token:
        raise CLIError(f"--token-file {path} is empty")
    return token


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CLIError("--tls-cert and --tls-key go together")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CLIError(f"cannot load the TLS certificate/key: {exc}") from None
    return context


def load_policies(paths: dict[str, Path], device: str) -> dict[str, Policy]:
    try:
        from robot_learning.policies import load_policy
    except ImportError as exc:
        raise CLIError(
            f"cannot load policies in this installation ({exc}); install the training extra"
        ) from exc
    policies: dict[str, Policy] = {}
    for name, path in paths.items():
        LOG.info("loading policy %r from %s", name, path)
        try:
            policies[name] = load_policy(path, device=device)
        except (ImportError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CLIError(f"cannot load the policy in {path}: {exc}") from exc
    return policies


async def serve_until_signalled(server: PolicyServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        raise CLIError(f"cannot listen on {server.host}:{server.port}: {exc}") from None
    LOG.info("serving %s on %s", ", ".join(server.policies), server.url)
    try:
        await stop.wait()
        LOG.info("shutting down")
    finally:
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    from robot_learning.serving.server import PolicyServer

    paths = parse_policies(args.policy)
    token = read_token(args.token_file) if args.token_file else None
    context = tls_context(args.tls_cert, args.tls_key)
    policies = load_policies(paths, args.device)
    server = PolicyServer(
        policies,
        host=args.host,
        port=args.port,
        token=token,
        ssl_context=context,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        model_hashes={name: model_hash(path) for name, path in paths.items()},
        inject_delay_ms=args.inject_delay_ms,
    )
    asyncio.run(serve_until_signalled(server))
    return 0

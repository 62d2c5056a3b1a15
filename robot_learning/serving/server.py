"""The policy server: websocket + msgpack front end over one batching worker per policy.

Why it looks like this: robots (or the evaluator) send one observation window per request and
get one action chunk back; the server checks each request against the policy's specs before it
can reach the model, batches concurrent requests per policy (:mod:`.batching`), and answers
``GET /healthz`` and ``GET /metrics`` on the same port so a supervisor or Prometheus needs no
second listener. Malformed input of any kind gets an error reply (or, for an oversized message, a
clean websocket close with 1009); nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from robot_learning import __version__
from robot_learning.serving.batching import BatchWorker, PendingRequest
from robot_learning.serving.metrics import CONTENT_TYPE, ServerMetrics
from robot_learning.serving.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    error_message,
    pack,
    short_repr,
    unpack,
)
from robot_learning.serving.validation import (
    PolicyLayout,
    RequestError,
    check_obs,
    check_prefix,
    check_request_id,
    resolve_policy,
)

if TYPE_CHECKING:
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)
DEFAULT_MAX_MESSAGE_BYTES = 64 * 2**20


class PolicyServer:
    """Serves ``policies`` (name -> Policy; the first is the default) over websockets.

    Run it with ``await start()`` / ``await stop()`` inside an event loop, or in a background
    thread with :class:`~robot_learning.serving.thread.ServerThread`. ``inject_delay_ms`` adds a
    sleep per batch in the worker thread, to emulate a slower model in latency experiments.
    """

    def __init__(
        self,
        policies: Mapping[str, Policy],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_batch: int = 8,
        max_wait_ms: float = 2.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_pending: int = 64,
        model_hashes: Mapping[str, str] | None = None,
        inject_delay_ms: float = 0.0,
    ) -> None:
        if not policies:
            raise ValueError("a policy server needs at least one policy")
        if token is not None and not token:
            raise ValueError("the token must not be empty (use None for no authentication)")
        self.policies = dict(policies)
        self.default_policy = next(iter(self.policies))
        self.host = host
        self.port = int(port)
        self.token = token
        self.ssl_context = ssl_context
        self.max_batch = int(max_batch)
        self.max_wait_ms = float(max_wait_ms)
        self.max_message_bytes = int(max_message_bytes)
        self.max_pending = int(max_pending)
        self.model_hashes = dict(model_hashes or {})
        self.inject_delay_ms = float(inject_delay_ms)
        self.metrics = ServerMetrics()
        self.layouts = {name: PolicyLayout.of(name, p) for name, p in self.policies.items()}
        self._metadata_bytes = pack(self.metadata())
        self._workers: dict[str, BatchWorker] = {}
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._server: Server | None = None
        self._ready = False
        self._pending = 0
        self._conn_ids = itertools.count(1)

    # ---- description ---------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The handshake message sent first on every connection."""
        described = {}
        for name, policy in self.policies.items():
            described[name] = {
                "observation_spec": policy.observation_spec.to_json(),
                "action_spec": policy.action_spec.to_json(),
                "n_obs_steps": int(policy.n_obs_steps),
                "chunk_len": int(policy.chunk_len),
                "n_action_steps": int(policy.n_action_steps),
                "control_hz": float(policy.control_hz),
                "supports_prefix": bool(policy.supports_prefix),
                "policy_type": type(policy).__name__,
                "model_hash": self.model_hashes.get(name),
            }
        return {
            "type": "metadata",
            "protocol": PROTOCOL_VERSION,
            "server": f"robot_learning {__version__}",
            "default_policy": self.default_policy,
            "policies": described,
            "limits": {"max_message_bytes": self.max_message_bytes, "max_batch": self.max_batch},
        }

    @property
    def scheme(self) -> str:
        return "wss" if self.ssl_context is not None else "ws"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.host}:{self.port}"

    @property
    def ready(self) -> bool:
        return self._ready

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the workers and listen; ``port`` then holds the bound port (useful with 0)."""
        self._workers = {
            name: BatchWorker(
                name,
                policy,
                self.metrics,
                max_batch=self.max_batch,
                max_wait_ms=self.max_wait_ms,
                inject_delay_ms=self.inject_delay_ms,
            )
            for name, policy in self.policies.items()
        }
        self._worker_tasks = [asyncio.create_task(w.run()) for w in self._workers.values()]
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            ssl=self.ssl_context,
            compression=None,
            process_request=self._process_request,
            max_size=self.max_message_bytes,
            close_timeout=2.0,
            server_header=f"robot_learning/{__version__}",
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._ready = True

    async def stop(self) -> None:
        """Close every connection (1001), stop the workers; idempotent."""
        self._ready = False
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in self._worker_tasks:
            task.cancel()
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        self._worker_tasks = []
        for worker in self._workers.values():
            worker.close()

    # ---- HTTP side -----------------------------------------------------------------------------
    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return conn.respond(200, "ok\n") if self._ready else conn.respond(503, "not serving\n")
        if path == "/metrics":
            response = conn.respond(200, self.metrics.render())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = CONTENT_TYPE
            return response
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                self.metrics.rejected.inc("auth")
                return conn.respond(401, "missing or wrong bearer token\n")
        return None

    # ---- websocket side ------------------------------------------------------------------------
    async def _handle(self, conn: ServerConnection) -> None:
        conn_id = next(self._conn_ids)
        tasks: set[asyncio.Task[None]] = set()
        gauge = self.metrics.connected_clients
        gauge.set(gauge.get() + 1)
        try:
            await conn.send(self._metadata_bytes)
            while True:
                message = await conn.recv()
                try:
                    await self._on_message(conn, conn_id, message, tasks)
                except ConnectionClosed:
                    raise
                except Exception:  # a bug must cost one reply, never the connection or server
                    LOG.exception("unexpected failure while handling a message")
                    await self._send_error(
                        conn, None, "internal", "the server failed on this message; see its log"
                    )
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self.metrics.rejected.inc("too_large")
        finally:
            for task in tasks:
                task.cancel()
            for worker in self._workers.values():
                worker.forget(conn_id)
            gauge.set(gauge.get() - 1)

    async def _send_error(
        self, conn: ServerConnection, request_id: Any, code: str, message: str
    ) -> None:
        self.metrics.errors.inc(code)
        LOG.debug("error reply %s: %s", code, message)
        await conn.send(pack(error_message(request_id, code, message)))

    async def _on_message(
        self,
        conn: ServerConnection,
        conn_id: int,
        data: str | bytes,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        received = time.perf_counter()
        if isinstance(data, str):
            await self._send_error(
                conn, None, "bad_message", "text frames are not accepted; send msgpack as binary"
            )
            return
        try:
            message = unpack(data)
        except ProtocolError as exc:
            await self._send_error(conn, None, "bad_message", str(exc))
            return
        if not isinstance(message, dict):
            await self._send_error(
                conn,
                None,
                "bad_message",
                f"a message must be a map with a 'type', got {type(message).__name__}",
            )
            return
        kind = message.get("type")
        if kind == "infer":
            await self._on_infer(conn, conn_id, message, received, tasks)
        elif kind == "ping":
            try:
                request_id = check_request_id(message)
            except RequestError as exc:
                await self._send_error(conn, None, exc.code, exc.message)
                return
            await conn.send(pack({"type": "pong", "id": request_id}))
        else:
            await self._send_error(
                conn,
                message.get("id"),
                "bad_message",
                f"unknown message type {short_repr(kind)}; valid types: infer, ping",
            )

    async def _on_infer(
        self,
        conn: ServerConnection,
        conn_id: int,
        message: dict[str, Any],
        received: float,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        request_id = message.get("id")
        try:
            request_id = check_request_id(message)
            name = resolve_policy(message, self.layouts, self.default_policy)
            self.metrics.requests.inc(name)
            layout = self.layouts[name]
            obs = check_obs(layout, message.get("obs"))
            prefix = check_prefix(layout, message.get("prefix"))
        except RequestError as exc:
            await self._send_error(conn, request_id, exc.code, exc.message)
            return
        if self._pending >= self.max_pending:
            self.metrics.rejected.inc("overloaded")
            await self._send_error(
                conn,
                request_id,
                "overloaded",
                f"{self._pending} requests are already waiting (max_pending "
                f"{self.max_pending}); retry later",
            )
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(self._request_done)
        self._pending += 1
        request = PendingRequest(conn_id, obs, prefix, received, future)
        self._workers[name].submit(request)
        task = asyncio.create_task(self._reply(conn, request_id, name, request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _request_done(self, future: asyncio.Future[Any]) -> None:
        self._pending -= 1
        if not future.cancelled():
            future.exception()  # retrieved here, so a closed connection's error is not logged

    async def _reply(
        self, conn: ServerConnection, request_id: int, name: str, request: PendingRequest
    ) -> None:
        try:
            try:
                actions, timing = await request.future
            except RequestError as exc:
                await self._send_error(conn, request_id, exc.code, exc.message)
                return
            server_s = time.perf_counter() - request.received
            timing["server_ms"] = server_s * 1e3
            self.metrics.request_seconds.observe(server_s, name)
            await conn.send(
                pack({"type": "actions", "id": request_id, "actions": actions, "timing": timing})
            )
        except ConnectionClosed:
            pass

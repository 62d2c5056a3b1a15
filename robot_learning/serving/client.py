"""Synchronous client of the policy server, made for control loops.

Why synchronous and why these rules: a robot's control loop must never stall on the network.
Every call is bounded by a timeout; a lost connection is retried only after an exponential
backoff delay, and before that delay has passed ``infer`` fails at once with
:class:`ServerUnavailable`, so the caller can hold position (or fall back) and try again on its
next tick. This module needs only websockets, msgpack and numpy (no torch), so it runs on a
robot computer that has no learning stack installed.
"""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from robot_learning import __version__
from robot_learning.serving.protocol import PROTOCOL_VERSION, ProtocolError, pack, unpack
from robot_learning.specs import SpecDict


class ServerError(RuntimeError):
    """The server answered with an error reply (``code`` as in the protocol)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ServerUnavailable(ConnectionError):
    """No answer: not connected, refused (``http_status``, e.g. 401), lost, or timed out."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class ChunkReply:
    """One action chunk: float32 ``[chunk_len, A]``, the server's timing, the round trip."""

    actions: np.ndarray
    timing: dict[str, float]
    rtt_ms: float


class PolicyClient:
    """Connects to ``url`` (ws:// or wss://) and asks for action chunks."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        policy: str | None = None,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.url = url
        self.token = token
        self.policy = policy
        self.connect_timeout_s = float(connect_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.ssl_context = ssl_context
        self.backoff_initial_s = float(backoff_initial_s)
        self.backoff_max_s = float(backoff_max_s)
        self._ws: ClientConnection | None = None
        self._metadata: dict[str, Any] | None = None
        self._backoff = self.backoff_initial_s
        self._next_attempt = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # ---- connection ----------------------------------------------------------------------------
    def connect(self) -> dict[str, Any]:
        """Open the connection now and return the server's metadata."""
        with self._lock:
            self._open(self.connect_timeout_s)
            assert self._metadata is not None
            return self._metadata

    @property
    def connected(self) -> bool:
        """True while the websocket is open; False as soon as the server closes it or dies
        (the connection's reader thread notices), before any request fails."""
        return self._ws is not None and self._ws.state is State.OPEN

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata of the latest connection (connects first if there was none)."""
        if self._metadata is None:
            return self.connect()
        return self._metadata

    def policy_info(self) -> dict[str, Any]:
        """Specs and timing of the policy this client asks (``policy`` or the server default)."""
        meta = self.metadata
        name = self.policy or str(meta["default_policy"])
        try:
            return dict(meta["policies"][name])
        except KeyError:
            raise ServerError(
                "unknown_policy",
                f"the server does not serve {name!r}; it serves: {', '.join(meta['policies'])}",
            ) from None

    def check_specs(self, observation_spec: SpecDict, action_spec: SpecDict) -> None:
        """Raise SpecError naming the first feature the robot and the served policy disagree on."""
        info = self.policy_info()
        SpecDict.from_json(info["observation_spec"]).check_compatible(
            observation_spec, what="the served policy's observation"
        )
        SpecDict.from_json(info["action_spec"]).check_compatible(
            action_spec, what="the served policy's action"
        )

    def _failed(self) -> None:
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2.0, self.backoff_max_s)

    def _lost(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close_socket()  # no closing handshake: the peer is gone, never wait for it
        self._failed()

    def _open(self, timeout_s: float) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        deadline = time.monotonic() + timeout_s
        try:
            ws = connect(
                self.url,
                ssl=self.ssl_context,
                compression=None,
                additional_headers=headers,
                open_timeout=max(timeout_s, 1e-3),
                close_timeout=1.0,
                max_size=None,
                user_agent_header=f"robot_learning/{__version__}",
                legacy=True,  # a connection object that outlives this call (websockets >= 17)
            )
        except InvalidStatus as exc:
            self._failed()
            status = exc.response.status_code
            hint = " (missing or wrong token)" if status == 401 else ""
            raise ServerUnavailable(
                f"{self.url} refused the connection: HTTP {status}{hint}", http_status=status
            ) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._failed()
            raise ServerUnavailable(f"cannot connect to {self.url}: {exc}") from None
        try:
            metadata = unpack(ws.recv(max(deadline - time.monotonic(), 1e-3), decode=False))
        except (TimeoutError, ConnectionClosed, ProtocolError, TypeError) as exc:
            ws.close()
            self._failed()
            raise ServerUnavailable(f"no valid metadata from {self.url}: {exc}") from None
        if not isinstance(metadata, dict) or metadata.get("type") != "metadata":
            ws.close()
            self._failed()
            raise ServerUnavailable(f"{self.url} is not a policy server (no metadata message)")
        if metadata.get("protocol") != PROTOCOL_VERSION:
            ws.close()
            raise ServerUnavailable(
                f"{self.url} speaks protocol {metadata.get('protocol')!r}; this client speaks "
                f"{PROTOCOL_VERSION}"
            )
        self._ws = ws
        self._metadata = metadata
        self._backoff = self.backoff_initial_s
        self._next_attempt = 0.0

    def _ensure_connected(self, deadline: float) -> ClientConnection:
        if self._ws is not None:
            return self._ws
        now = time.monotonic()
        if now < self._next_attempt:
            raise ServerUnavailable(
                f"not connected to {self.url}; next reconnect attempt in "
                f"{self._next_attempt - now:.2f} s"
            )
        self._open(min(self.connect_timeout_s, max(deadline - now, 1e-3)))
        assert self._ws is not None
        return self._ws

    def close(self) -> None:
        with self._lock:
            if self._ws is not None:
                self._ws.close()
                self._ws = None

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- requests ------------------------------------------------------------------------------
    def _infer_message(self, obs: Mapping[str, Any], prefix: Any) -> tuple[int, dict[str, Any]]:
        request_id = next(self._ids)
        message: dict[str, Any] = {
            "type": "infer",
            "id": request_id,
            "obs": {
                k: v if isinstance(v, (str, np.ndarray)) else np.asarray(v) for k, v in obs.items()
            },
        }
        if self.policy is not None:
            message["policy"] = self.policy
        if prefix is not None:
            message["prefix"] = np.asarray(prefix, dtype=np.float32)
        return request_id, message

    def _exchange(
        self, messages: list[tuple[int, dict[str, Any]]], timeout_s: float | None
    ) -> dict[int, tuple[dict[str, Any], float]]:
        """Send every message (pipelined), then wait for a reply to each; id -> (reply, rtt)."""
        timeout = self.request_timeout_s if timeout_s is None else float(timeout_s)
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise ServerUnavailable(f"the client was busy for {timeout:.3f} s (another thread)")
        try:
            ws = self._ensure_connected(deadline)
            encoded = [pack(message) for _, message in messages]
            wanted = {request_id for request_id, _ in messages}
            start = time.perf_counter()
            replies: dict[int, tuple[dict[str, Any], float]] = {}
            try:
                for data in encoded:
                    ws.send(data)
                while len(replies) < len(wanted):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    reply = unpack(ws.recv(remaining, decode=False))
                    if not isinstance(reply, dict):
                        raise ProtocolError(f"the server sent a {type(reply).__name__}, not a map")
                    reply_id = reply.get("id")
                    if reply_id in wanted:
                        replies[reply_id] = (reply, (time.perf_counter() - start) * 1e3)
                    elif reply.get("type") == "error" and reply_id is None:
                        raise ServerError(str(reply.get("code")), str(reply.get("message")))
                    # else: a late reply to a request that already timed out; dropped
            except TimeoutError:
                raise ServerUnavailable(
                    f"no reply from {self.url} within {timeout:.3f} s"
                ) from None
            except (ConnectionClosed, OSError) as exc:
                self._lost()
                raise ServerUnavailable(f"connection to {self.url} lost: {exc}") from None
            return replies
        finally:
            self._lock.release()

    @staticmethod
    def _chunk(reply: dict[str, Any], rtt_ms: float) -> ChunkReply:
        if reply.get("type") == "error":
            raise ServerError(str(reply.get("code")), str(reply.get("message")))
        actions = reply.get("actions")
        if reply.get("type") != "actions" or not isinstance(actions, np.ndarray):
            raise ProtocolError(f"unexpected reply type {reply.get('type')!r} to an infer")
        timing = reply.get("timing")
        return ChunkReply(
            actions=np.array(actions, dtype=np.float32),
            timing=dict(timing) if isinstance(timing, dict) else {},
            rtt_ms=rtt_ms,
        )

    def infer(
        self, obs_window: Mapping[str, Any], prefix: Any = None, timeout_s: float | None = None
    ) -> ChunkReply:
        """One robot's window (``[n_obs_steps, *shape]`` per feature) -> its action chunk."""
        request_id, message = self._infer_message(obs_window, prefix)
        reply, rtt = self._exchange([(request_id, message)], timeout_s)[request_id]
        return self._chunk(reply, rtt)

    def infer_many(
        self,
        obs_windows: Sequence[Mapping[str, Any]],
        prefixes: Sequence[Any] | None = None,
        timeout_s: float | None = None,
    ) -> list[ChunkReply]:
        """Several windows pipelined on this connection; replies in request order.

        Waits for every reply, then raises the first :class:`ServerError` if any request failed.
        """
        if prefixes is not None and len(prefixes) != len(obs_windows):
            raise ValueError(f"{len(prefixes)} prefixes for {len(obs_windows)} observations")
        messages = [
            self._infer_message(obs, None if prefixes is None else prefixes[i])
            for i, obs in enumerate(obs_windows)
        ]
        if not messages:
            return []
        replies = self._exchange(messages, timeout_s)
        return [self._chunk(*replies[request_id]) for request_id, _ in messages]

    def ping(self, timeout_s: float | None = None) -> float:
        """Round trip of a ping (no model), in milliseconds."""
        request_id = next(self._ids)
        reply, rtt = self._exchange([(request_id, {"type": "ping", "id": request_id})], timeout_s)[
            request_id
        ]
        if reply.get("type") != "pong":
            raise ProtocolError(f"unexpected reply {reply.get('type')!r} to a ping")
        return rtt

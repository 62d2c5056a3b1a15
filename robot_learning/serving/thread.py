"""Runs a :class:`PolicyServer` on its own event loop in a daemon thread.

Why: tests, notebooks and in-process evaluation want a live server next to synchronous code
(``with ServerThread(server) as t: PolicyClient(t.url)...``) without writing asyncio; leaving the
``with`` block closes every connection and stops the loop before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from robot_learning.serving.server import PolicyServer


class ServerThread:
    """Context manager: starts ``server`` in a background thread, stops it on exit."""

    def __init__(self, server: PolicyServer, start_timeout_s: float = 30.0) -> None:
        self.server = server
        self.start_timeout_s = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def port(self) -> int:
        return self.server.port

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("this ServerThread was already started")
        self._thread = threading.Thread(target=self._run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._started.wait(self.start_timeout_s):
            raise TimeoutError(f"the policy server did not start within {self.start_timeout_s} s")
        if self._error is not None:
            raise RuntimeError(f"the policy server failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Close all connections and stop the loop; returns when the thread has ended."""
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30.0)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

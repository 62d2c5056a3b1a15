"""One writer per store: an advisory ``flock`` on ``<store>/.writer.lock``.

Why: two collectors appending to one store would interleave frames of different episodes. The
kernel drops an ``flock`` when its process dies (even on ``kill -9``), so a crashed writer never
leaves a stale lock behind; the file records who holds it so the refusal names the other writer.
Readers never take the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from robot_learning.data.errors import StoreLockedError

LOCK_NAME = ".writer.lock"


class WriterLock:
    """Exclusive, non-blocking writer lock on a store directory."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the current holder."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreLockedError(
                f"{self.path.parent} is already open for writing by {holder}; one writer per "
                "store: stop the other collector, or write to another store and "
                "'robot-learning dataset merge' them"
            ) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.write(fd, json.dumps(info).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {info['pid']} on {info['host']} (since {since})"
    except (ValueError, KeyError, OSError):
        return "another process"

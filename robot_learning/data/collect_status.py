"""The live status of a recording session, drawn by its own thread.

Why a thread: the status line (and the disk-usage scan of the store, which walks thousands of
chunk files) must never cost the control loop a deadline. The loop only bumps counters in a
:class:`~robot_learning.data.collect_state.SessionStats`; this thread reads them ~2x/s. On a
terminal the line is redrawn in place; otherwise (a log file, a pipe) it becomes a plain log line
every few seconds, and episode outcomes are always logged as lines.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from robot_learning.data.disk import disk_usage

if TYPE_CHECKING:
    from robot_learning.data.collect_state import SessionStats

LOG = logging.getLogger("robot_learning.cli.collect")
CLEAR_LINE = "\r\x1b[K"


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def format_status(stats: SessionStats, store_bytes: int, help_line: str = "") -> str:
    """One line: episode k/N, step, achieved loop rate, overruns, drops, backpressure, disk."""
    k = min(stats.episodes_saved + 1, stats.episodes_target)
    parts = [
        f"episode {k}/{stats.episodes_target} (#{stats.episode})",
        f"step {stats.step}",
        f"{stats.loop_rate_hz:5.1f} Hz",
        f"overruns {stats.overruns}",
        f"dropped {stats.dropped_frames}",
        f"backpressure {stats.backpressure_waits}",
        f"disk {human_bytes(store_bytes)}",
    ]
    if stats.phase not in ("recording", "starting"):
        parts.append(stats.phase)
    line = " | ".join(parts)
    return f"{line}  {help_line}" if help_line else line


class StatusReporter:
    """Redraws the status ~2x/s on a tty, or logs it every ``log_every_s`` otherwise.

    ``enabled=False`` (``-q``) silences both the line and the episode messages.
    """

    def __init__(
        self,
        stats: SessionStats,
        store_root: Path,
        stream: TextIO,
        *,
        enabled: bool = True,
        help_line: str = "",
        interval_s: float = 0.5,
        log_every_s: float = 5.0,
        disk_every_s: float = 2.0,
    ) -> None:
        self.stats = stats
        self.store_root = Path(store_root)
        self.stream = stream
        self.enabled = enabled
        self.help_line = help_line
        self.interval_s = interval_s
        self.log_every_s = log_every_s
        self.disk_every_s = disk_every_s
        self.is_tty = enabled and _isatty(stream)
        self.store_bytes = 0
        self._disk_at = -1e9
        self._disk_interval = disk_every_s
        self._log_at = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> StatusReporter:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="collect-status", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.is_tty:
            with self._lock:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()

    def event(self, message: str) -> None:
        """An episode outcome or notice: a line of its own, above the redrawn status."""
        if not self.enabled:
            return
        if self.is_tty:
            with self._lock:
                self.stream.write(f"{CLEAR_LINE}{message}\n")
                self.stream.flush()
        else:
            LOG.info("%s", message)

    def refresh_disk(self) -> int:
        """Re-scan the store; a big store is scanned less often (at most ~5% of the time)."""
        t0 = time.monotonic()
        self.store_bytes = disk_usage(self.store_root)
        self._disk_at = time.monotonic()
        self._disk_interval = max(self.disk_every_s, 20 * (self._disk_at - t0))
        return self.store_bytes

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            if now - self._disk_at >= self._disk_interval:
                self.refresh_disk()
            line = format_status(self.stats, self.store_bytes, self.help_line)
            if self.is_tty:
                with self._lock:
                    self.stream.write(f"{CLEAR_LINE}{line}")
                    self.stream.flush()
            elif now - self._log_at >= self.log_every_s:
                self._log_at = now
                LOG.info("%s", format_status(self.stats, self.store_bytes))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["StatusReporter", "format_status", "human_bytes"]

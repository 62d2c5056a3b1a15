"""Non-blocking single-key input from a terminal (or any readable stream, for tests).

Why: the keyboard teleop and the collection CLI (session keys beside a SpaceMouse or leader arm)
must see keys as they are pressed, without Enter and without stalling the control loop. On a tty
:class:`TerminalKeys` switches to cbreak mode (no line buffering, no echo; Ctrl-C still
interrupts) and always restores the previous mode on exit, even when the body raises. A pipe or
file works too (no mode change), so tests can feed keys without a terminal.

Escape sequences (arrow and function keys) come back as one string, e.g. ``"\\x1b[D"``, so the
final letter of a sequence is never mistaken for a key: left arrow must not read as ``D``.
"""

from __future__ import annotations

import codecs
import logging
import os
import select
import sys
import termios
import tty
from types import TracebackType
from typing import IO, Any

LOG = logging.getLogger(__name__)

ESC = "\x1b"
_READ_CHUNK = 1024


class TerminalKeys:
    """Keys pressed since the last :meth:`poll`, read without blocking.

    ``stream`` is a file descriptor or a file object with ``fileno()``; default ``sys.stdin``.
    Use as a context manager (or ``open()`` / ``close()``).
    """

    def __init__(self, stream: int | IO[Any] | None = None) -> None:
        self._stream = stream
        self._fd = -1
        self._saved: list[Any] | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # an escape sequence split across reads
        self.eof = False  # the stream closed (pipe writer gone); poll() then returns []

    @property
    def is_tty(self) -> bool:
        return self._fd >= 0 and os.isatty(self._fd)

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def open(self) -> TerminalKeys:
        if self._fd >= 0:
            return self
        self._fd = self._resolve_fd()
        if os.isatty(self._fd):
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
            LOG.debug("terminal fd %d in cbreak mode", self._fd)
        return self

    def close(self) -> None:
        """Restore the terminal mode saved by :meth:`open` (the fd itself is not closed)."""
        if self._saved is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            except termios.error as exc:  # the terminal went away; nothing left to restore
                LOG.debug("could not restore terminal mode: %s", exc)
            self._saved = None
        self._fd = -1

    def __enter__(self) -> TerminalKeys:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _resolve_fd(self) -> int:
        stream = sys.stdin if self._stream is None else self._stream
        if isinstance(stream, int):
            return stream
        try:
            return stream.fileno()
        except (AttributeError, OSError, ValueError) as exc:
            raise RuntimeError(
                "TerminalKeys needs a readable file descriptor; standard input has none here "
                "(redirected or captured). Run in a terminal or pass stream= (an fd or file)"
            ) from exc

    def poll(self) -> list[str]:
        """Keys pressed since the last call, oldest first; never blocks."""
        if self._fd < 0:
            raise RuntimeError("TerminalKeys.poll() needs open(): use it in a 'with' block")
        data = self._read_available()
        text = self._pending + self._decoder.decode(data)
        keys, self._pending = split_keys(text, final=not data)
        return keys

    def _read_available(self) -> bytes:
        chunks: list[bytes] = []
        while not self.eof:
            ready, _, _ = select.select([self._fd], [], [], 0)
            if not ready:
                break
            chunk = os.read(self._fd, _READ_CHUNK)
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
        return b"".join(chunks)


def split_keys(text: str, final: bool = True) -> tuple[list[str], str]:
    """Split decoded input into keys; escape sequences stay whole.

    Returns ``(keys, rest)``: ``rest`` is an escape sequence cut off at the end of ``text``, kept
    for the next read unless ``final`` (no more bytes are coming now: then a lone ESC is the Esc
    key).
    """
    keys: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != ESC:
            keys.append(text[i])
            i += 1
            continue
        end = _escape_end(text, i)
        if end is None:  # incomplete
            if not final:
                return keys, text[i:]
            end = len(text)
        keys.append(text[i:end])
        i = end
    return keys, ""


def _escape_end(text: str, start: int) -> int | None:
    """End index of the escape sequence at ``start`` (CSI ``ESC [ ... final``, SS3 ``ESC O x``,
    or ``ESC x``), or None if the text stops inside it."""
    if start + 1 >= len(text):
        return None
    kind = text[start + 1]
    if kind == "[":
        j = start + 2
        while j < len(text):
            if "\x40" <= text[j] <= "\x7e":  # final byte of a CSI sequence
                return j + 1
            j += 1
        return None
    if kind == "O":
        return start + 3 if start + 2 < len(text) else None
    if kind == ESC:  # Esc pressed twice: the first stands alone
        return start + 1
    return start + 2  # Alt+key


__all__ = ["TerminalKeys", "split_keys"]

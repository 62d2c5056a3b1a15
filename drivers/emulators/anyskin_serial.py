"""An AnySkin / ReSkin magnetometer board, emulated on a pseudo-terminal.

Why: the AnySkin driver reads the skin through the real ``pyserial``. Serving the board's binary
burst stream on a pty lets the unmodified ``serial.Serial(emulator.port)`` read field values a
test sets, including faults that are hard to produce on demand on a bench: bytes lost or
inserted on the wire, NaN values, a stream that stalls, a cable pulled mid-stream.

Frame format, written from the AnySkin ``5X_binary_burst_stream`` firmware (which writes the
MLX90393 library's ``txyz`` struct per chip, then ``Serial.println()``): per magnetometer four
little-endian float32 ``t, x, y, z`` (deg C, microtesla), then ``\\r\\n``. This encoder is kept
separate from the driver's parser on purpose, so a shared misunderstanding cannot hide.

A writer thread sends frames at ``rate_hz``; pyserial waits in ``select`` with the GIL released,
so a thread keeps up (unlike the Dynamixel SDK's busy-wait, which needed a forked server). Run
``python -m drivers.emulators.anyskin_serial --wiggle`` for a board to try the driver by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import struct
import threading
import time
import tty
from collections.abc import Sequence
from types import TracebackType

import numpy as np

LOG = logging.getLogger(__name__)

TERMINATOR = b"\r\n"
DROPPED_BYTES = 3  # a corrupted frame loses this many data bytes (a USB CDC overrun)


def encode_frame(field_ut: np.ndarray, temperature_c: float | np.ndarray = 25.0) -> bytes:
    """One burst-mode frame for ``field_ut`` of shape ``(num_magnetometers, 3)``."""
    field = np.asarray(field_ut, dtype=np.float64)
    if field.ndim != 2 or field.shape[1] != 3:
        raise ValueError(f"field must be (num_magnetometers, 3), got shape {field.shape}")
    temps = np.broadcast_to(np.asarray(temperature_c, dtype=np.float64), (field.shape[0],))
    values: list[float] = []
    for t, (x, y, z) in zip(temps, field):
        values += [float(t), float(x), float(y), float(z)]
    return struct.pack(f"<{len(values)}f", *values) + TERMINATOR


class AnySkinEmulator:
    """A board streaming frames on a pty whose slave path (:attr:`port`) pyserial opens.

    Use as a context manager or ``start()`` / ``stop()``; :meth:`unplug` closes the pty while the
    host holds it open, which the host sees as an I/O error, as when the USB cable is pulled.
    """

    def __init__(
        self, num_magnetometers: int = 5, rate_hz: float = 200.0, temperature_c: float = 25.0
    ) -> None:
        if num_magnetometers < 1:
            raise ValueError(f"num_magnetometers must be >= 1, got {num_magnetometers}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.num_magnetometers = num_magnetometers
        self.rate_hz = rate_hz
        self.temperature_c = temperature_c
        self.port = ""
        self._field = np.zeros((num_magnetometers, 3), dtype=np.float64)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._noise = bytearray()
        self._corrupt_budget = 0
        self.frames_sent = 0
        self.frames_corrupted = 0

    # ---- the "physics" side: what the test controls ---------------------------------------------
    @property
    def values(self) -> np.ndarray:
        with self._lock:
            return self._field.copy()

    def set_values(self, field_ut: np.ndarray | Sequence[Sequence[float]]) -> None:
        """Field per magnetometer, ``(num_magnetometers, 3)`` uT; NaN is sent as is."""
        field = np.asarray(field_ut, dtype=np.float64)
        if field.shape != (self.num_magnetometers, 3):
            raise ValueError(
                f"field must have shape ({self.num_magnetometers}, 3), got {field.shape}"
            )
        with self._lock:
            self._field = field.copy()

    def inject_noise(self, data: bytes) -> None:
        """Write ``data`` into the stream before the next frame (line noise between frames)."""
        with self._lock:
            self._noise += data

    def corrupt_next(self, count: int = 1) -> None:
        """Send the next ``count`` frames with bytes missing, so their terminator is misplaced."""
        with self._lock:
            self._corrupt_budget += count

    def pause(self) -> None:
        """Stop sending frames (the board hangs) while keeping the port open."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    # ---- lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> AnySkinEmulator:
        if self.running:
            return self
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or newline translation before the host configures it
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="anyskin-emulator", daemon=True)
        self._thread.start()
        LOG.debug("AnySkin emulator (%d magnetometers) on %s", self.num_magnetometers, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the pty (the board is unplugged)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    unplug = stop

    def __enter__(self) -> AnySkinEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- serving -------------------------------------------------------------------------------
    def _serve(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            next_t += period
            if time.monotonic() - next_t > 0.5:  # fell far behind (loaded machine): no burst
                next_t = time.monotonic()
            if self._paused.is_set():
                continue
            self._write(self._next_chunk())

    def _next_chunk(self) -> bytes:
        with self._lock:
            frame = encode_frame(self._field, self.temperature_c)
            noise, self._noise = bytes(self._noise), bytearray()
            if self._corrupt_budget > 0:
                self._corrupt_budget -= 1
                self.frames_corrupted += 1
                mid = len(frame) // 2
                frame = frame[:mid] + frame[mid + DROPPED_BYTES :]
            self.frames_sent += 1
        return noise + frame

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:  # nobody reads: the bytes are lost, as on a real USB link
                return
            except OSError:
                return
            view = view[written:]


def main(argv: Sequence[str] | None = None) -> None:
    """Serve an emulated board until Ctrl-C, optionally pressing on it periodically."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--num-magnetometers", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="frames per second")
    parser.add_argument("--wiggle", action="store_true", help="vary the field like a press")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rest = np.tile([120.0, -80.0, 300.0], (args.num_magnetometers, 1))
    with AnySkinEmulator(args.num_magnetometers, args.rate) as board:
        board.set_values(rest)
        LOG.info(
            "emulated AnySkin (%d magnetometers, %g Hz) on %s; Ctrl-C to stop",
            args.num_magnetometers,
            args.rate,
            board.port,
        )
        start = time.monotonic()
        try:
            while True:
                time.sleep(0.02)
                if args.wiggle:
                    press = max(0.0, math.sin(2 * math.pi * 0.5 * (time.monotonic() - start)))
                    board.set_values(rest + press * np.array([10.0, -5.0, 150.0]))
        except KeyboardInterrupt:
            LOG.info("stopped")


if __name__ == "__main__":
    main()

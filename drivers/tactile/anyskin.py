"""``AnySkin``: AnySkin / ReSkin magnetometer skins streaming binary frames over USB serial.

Frame format, as sent by the AnySkin ``5X_binary_burst_stream`` firmware and parsed by the
``anyskin`` / ``reskin_sensor`` Python packages (burst mode): for every magnetometer (MLX90393)
in board order, four little-endian float32 values ``t, x, y, z`` (temperature in deg C, field in
microtesla), then the two bytes ``\\r\\n``. Five magnetometers give 5 * 16 + 2 = 82 bytes. There is
no header or checksum, so the terminator is the only framing: a frame whose last two bytes are not
``\\r\\n`` is malformed and the parser resynchronises by dropping everything up to the next
``\\r\\n`` (what the vendor reader does with ``read_until``). Frames that do line up but carry
NaN/Inf or implausible values (a misaligned float) are rejected too; both count as
``frames_malformed``.

A reader thread keeps only the latest frame with its host receive time (``time.time()``, the
board has no clock), so :meth:`AnySkin.read` never returns a stale backlog. Temperatures are
dropped from the feature (as ``temp_filtered=True`` in the vendor package) and kept in
:attr:`AnySkin.temperatures`.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import serial

from drivers.interfaces import TactileSensor
from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning.types import Observation

LOG = logging.getLogger(__name__)

TERMINATOR = b"\r\n"
VALUES_PER_MAGNETOMETER = 4  # t, x, y, z
MAX_ABS_FIELD_UT = 1.0e6  # MLX90393 full scale is ~5e4 uT; far beyond it means misaligned bytes
TEMPERATURE_RANGE_C = (-60.0, 200.0)  # the chip's operating range with margin
PORT_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*")


class AnySkinError(RuntimeError):
    """The skin's serial port is missing, cannot be opened, or went away."""


class AnySkinTimeoutError(AnySkinError, TimeoutError):
    """No valid frame arrived within the timeout."""


class AnySkinDisconnectedError(AnySkinError, ConnectionError):
    """The port failed while streaming (cable pulled, board reset)."""


def frame_length(num_magnetometers: int) -> int:
    return num_magnetometers * VALUES_PER_MAGNETOMETER * 4 + len(TERMINATOR)


def available_ports() -> list[str]:
    """Serial ports an AnySkin board could be on (USB CDC ACM or USB-serial adapters)."""
    return sorted(p for pattern in PORT_PATTERNS for p in glob.glob(pattern))


class FrameParser:
    """Splits the byte stream into ``(num_magnetometers, 4)`` float32 frames ``[t, x, y, z]``.

    Bytes before the first terminator are a partial frame from joining mid-stream and are dropped
    without counting; after that every frame that fails a check increments :attr:`malformed`.
    """

    def __init__(self, num_magnetometers: int) -> None:
        self.num_magnetometers = num_magnetometers
        self.length = frame_length(num_magnetometers)
        self.malformed = 0
        self.last_problem = ""
        self._buf = bytearray()
        self._synced = False

    def feed(self, data: bytes) -> list[np.ndarray]:
        self._buf += data
        frames: list[np.ndarray] = []
        while True:
            if not self._synced:
                if not self._skip_past_terminator():
                    return frames
                self._synced = True
                continue
            if len(self._buf) < self.length:
                return frames
            if self._buf[self.length - 2 : self.length] != TERMINATOR:
                self._reject("frame does not end in \\r\\n (lost or extra bytes)")
                self._synced = self._skip_past_terminator()
                continue
            values = np.frombuffer(bytes(self._buf[: self.length - 2]), dtype="<f4")
            del self._buf[: self.length]
            frame = values.reshape(self.num_magnetometers, VALUES_PER_MAGNETOMETER)
            problem = self._check(frame)
            if problem:
                self._reject(problem)
                continue
            frames.append(frame.astype(np.float32))

    def _skip_past_terminator(self) -> bool:
        """Drop bytes through the next terminator; False (keeping a trailing ``\\r``) if none."""
        idx = self._buf.find(TERMINATOR)
        if idx < 0:
            keep = 1 if self._buf.endswith(TERMINATOR[:1]) else 0
            del self._buf[: len(self._buf) - keep]
            return False
        del self._buf[: idx + len(TERMINATOR)]
        return True

    @staticmethod
    def _check(frame: np.ndarray) -> str:
        if not np.all(np.isfinite(frame)):
            return "NaN or Inf in frame"
        temps = frame[:, 0]
        if np.any(temps < TEMPERATURE_RANGE_C[0]) or np.any(temps > TEMPERATURE_RANGE_C[1]):
            return f"implausible temperature {temps.tolist()} (misaligned frame?)"
        if np.any(np.abs(frame[:, 1:]) > MAX_ABS_FIELD_UT):
            return f"field beyond +-{MAX_ABS_FIELD_UT:g} uT (misaligned frame?)"
        return ""

    def _reject(self, problem: str) -> None:
        self.malformed += 1
        self.last_problem = problem
        LOG.debug("skipping malformed AnySkin frame: %s", problem)


@dataclass
class AnySkinConfig:
    """Port settings; ``timeout_s`` bounds waiting for data on connect, read and rezero."""

    port: str
    baudrate: int = 115200
    num_magnetometers: int = 5
    name: str = "anyskin"
    timeout_s: float = 1.0

    def validate(self) -> None:
        if self.num_magnetometers < 1:
            raise ValueError(f"num_magnetometers must be >= 1, got {self.num_magnetometers}")
        if self.baudrate <= 0:
            raise ValueError(f"baudrate must be positive, got {self.baudrate}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if not self.name:
            raise ValueError("name must be a non-empty feature name")


class AnySkin(TactileSensor):
    """An AnySkin (or ReSkin) board: feature ``name`` is ``(num_magnetometers, 3)`` float32 uT.

    Readings are the field minus the baseline set by :meth:`rezero` (zero until then, i.e. raw).
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        num_magnetometers: int = 5,
        name: str = "anyskin",
        timeout_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.config = AnySkinConfig(port, baudrate, num_magnetometers, name, timeout_s)
        self.config.validate()
        self._serial: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._parser = FrameParser(num_magnetometers)
        self._latest: np.ndarray | None = None
        self._stamp = 0.0
        self._received = 0
        self._error: BaseException | None = None
        self._zero_samples: list[np.ndarray] | None = None
        self._baseline = np.zeros((num_magnetometers, 3), dtype=np.float32)

    @property
    def device_name(self) -> str:
        return f"AnySkin({self.config.port})"

    # ---- counters ------------------------------------------------------------------------------
    @property
    def frames_received(self) -> int:
        """Valid frames decoded since connect."""
        with self._cond:
            return self._received

    @property
    def frames_malformed(self) -> int:
        """Frames skipped: bad framing, NaN/Inf or implausible values."""
        with self._cond:
            return self._parser.malformed

    @property
    def baseline(self) -> np.ndarray:
        with self._cond:
            return self._baseline.copy()

    @property
    def temperatures(self) -> np.ndarray:
        """Latest per-magnetometer temperature (deg C), useful to judge thermal drift."""
        self.require_connected("temperatures")
        with self._cond:
            if self._latest is None:
                raise AnySkinTimeoutError(f"no frame received yet from {self.config.port}")
            return self._latest[:, 0].copy()

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        cfg = self.config
        if "://" not in cfg.port and not os.path.exists(cfg.port):
            ports = available_ports()
            raise AnySkinError(
                f"AnySkin serial port {cfg.port!r} does not exist; available serial ports: "
                f"{ports or 'none found'} (matching {', '.join(PORT_PATTERNS)})"
            )
        try:
            self._serial = serial.serial_for_url(cfg.port, baudrate=cfg.baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise AnySkinError(f"cannot open AnySkin port {cfg.port!r}: {exc}") from exc
        self._stop.clear()
        self._parser = FrameParser(cfg.num_magnetometers)
        self._latest, self._received, self._error = None, 0, None
        self._thread = threading.Thread(target=self._run, name=f"anyskin:{cfg.port}", daemon=True)
        self._thread.start()
        try:
            self._wait_for_frame(0, "connect")
        except BaseException:
            self._shutdown()
            raise
        LOG.info("AnySkin on %s streaming (%d magnetometers)", cfg.port, cfg.num_magnetometers)

    def _disconnect(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self._stop.set()
        ser = self._serial
        if ser is not None and hasattr(ser, "cancel_read"):
            with contextlib.suppress(Exception):
                ser.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                LOG.warning("AnySkin reader thread on %s did not stop", self.config.port)
        self._thread = None
        if ser is not None:
            with contextlib.suppress(Exception):
                ser.close()
        self._serial = None

    # ---- reader thread -------------------------------------------------------------------------
    def _run(self) -> None:
        ser = self._serial
        assert ser is not None
        while not self._stop.is_set():
            try:
                data = ser.read(max(1, min(ser.in_waiting, 4096)))
            except (serial.SerialException, OSError) as exc:
                if not self._stop.is_set():
                    LOG.warning("AnySkin on %s failed: %s", self.config.port, exc)
                    with self._cond:
                        self._error = exc
                        self._cond.notify_all()
                return
            if not data:
                continue
            now = time.time()
            with self._cond:
                frames = self._parser.feed(data)
                if not frames:
                    continue
                self._latest, self._stamp = frames[-1], now
                self._received += len(frames)
                if self._zero_samples is not None:
                    self._zero_samples.extend(frames)
                self._cond.notify_all()

    def _wait_for_frame(self, after: int, what: str) -> None:
        """Block until more than ``after`` frames were received; raise naming the port if not."""
        deadline = time.monotonic() + self.config.timeout_s
        with self._cond:
            while self._received <= after:
                self._raise_if_failed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout(what)
                self._cond.wait(remaining)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AnySkinDisconnectedError(
                f"AnySkin on {self.config.port} stopped streaming: {self._error} (unplugged or "
                "reset?); reconnect the sensor and call connect() again"
            )

    def _timeout(self, what: str) -> AnySkinTimeoutError:
        cfg = self.config
        return AnySkinTimeoutError(
            f"AnySkin {what}: no valid frame from {cfg.port} within {cfg.timeout_s:g} s "
            f"({self._received} frames received, {self._parser.malformed} malformed"
            + (f", last problem: {self._parser.last_problem}" if self._parser.last_problem else "")
            + f"); check the cable, the baud rate ({cfg.baudrate}) and that the board runs the "
            f"binary burst-stream firmware for {cfg.num_magnetometers} magnetometers"
        )

    # ---- TactileSensor -------------------------------------------------------------------------
    def observation_spec(self) -> SpecDict:
        n = self.config.num_magnetometers
        return SpecDict(
            {
                self.config.name: FeatureSpec(
                    (n, 3),
                    "float32",
                    "tactile",
                    description="magnetic field x, y, z per magnetometer minus baseline, uT",
                )
            }
        )

    def read(self) -> Observation:
        """The latest frame minus the baseline, stamped with its host receive time.

        Waits up to ``timeout_s`` when the latest frame is older than that (stream paused).
        """
        self.require_connected("read")
        with self._cond:
            self._raise_if_failed()
            stale = self._latest is None or time.time() - self._stamp > self.config.timeout_s
            received = self._received
        if stale:
            self._wait_for_frame(received, "read")
        with self._cond:
            self._raise_if_failed()
            assert self._latest is not None
            values = (self._latest[:, 1:] - self._baseline).astype(np.float32)
            stamp = self._stamp
        name = self.config.name
        return Observation(values={name: values}, timestamps={name: stamp})

    def rezero(self, n_samples: int = 50) -> np.ndarray:
        """Set the baseline to the mean of the next ``n_samples`` frames; returns it.

        Why: the magnets' rest field differs per skin and drifts with temperature, so contact is
        the change from a recent no-contact baseline. Do not touch the skin while this runs.
        """
        self.require_connected("rezero")
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        with self._cond:
            self._zero_samples = []
        try:
            while True:
                with self._cond:
                    samples = self._zero_samples
                    assert samples is not None
                    if len(samples) >= n_samples:
                        stack = np.stack(samples[:n_samples])
                        self._baseline = stack[:, :, 1:].mean(axis=0).astype(np.float32)
                        return self._baseline.copy()
                    received = self._received
                self._wait_for_frame(received, "rezero")
        finally:
            with self._cond:
                self._zero_samples = None


# ReSkin boards stream the same burst-mode frames.
ReSkin = AnySkin

__all__ = [
    "AnySkin",
    "AnySkinConfig",
    "AnySkinDisconnectedError",
    "AnySkinError",
    "AnySkinTimeoutError",
    "FrameParser",
    "ReSkin",
    "available_ports",
    "frame_length",
]

"""An emulated Intel RealSense: a ``pyrealsense2.software_device`` fed with synthetic frames.

Why: the RealSense driver must be tested against the real ``pyrealsense2`` stack (pipeline,
syncer, ``rs.align``, playback) without a camera. librealsense ships the pieces for this: a
*software device* whose sensors accept frames pushed from Python with chosen pixels, timestamps
and frame numbers, and a *recorder* that writes whatever such a device streams into a recording
the unmodified ``rs.config.enable_device_from_file`` plays back, exactly as it plays a recording
made with a D435.

Two ways to use it:

* live: ``EmulatedRealSense(...).device`` is handed to the driver (``pipeline.set_device``), and
  the test calls :meth:`EmulatedRealSense.inject` for each frame. A software device is not listed
  by ``rs.context().query_devices()``, so it cannot be selected by serial.
* recorded: :func:`write_recording` streams a list of :class:`SyntheticFrame` through the
  recorder into a ``.db3`` file (librealsense 2.59 chooses the format from the extension) for
  ``RealSenseCamera(playback=path)``.

Frame numbers are taken as given, so a test can skip one to emulate a dropped frame.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

LOG = logging.getLogger(__name__)

RECORDING_SUFFIX = ".db3"
HFOV_DEG = 69.0  # D435 colour horizontal field of view; both emulated sensors share it
_COLOUR_UID = 1
_DEPTH_UID = 0


@dataclass(frozen=True)
class EmulatedRealSenseConfig:
    """What the emulated camera reports: identity, stream modes and depth units."""

    serial: str = "000000000001"
    product: str = "Intel RealSense D435 (emulated)"
    width: int = 64
    height: int = 48
    fps: int = 30
    depth: bool = True
    depth_width: int | None = None  # None: same as colour
    depth_height: int | None = None
    depth_units: float = 0.001  # metres per depth count (D4xx default: 1 mm)
    baseline_m: float = 0.0  # depth -> colour translation along x

    @property
    def depth_size(self) -> tuple[int, int]:
        """(width, height) of the depth stream."""
        return (self.depth_width or self.width, self.depth_height or self.height)


@dataclass
class SyntheticFrame:
    """One injected capture: colour (H, W, 3) RGB and optional raw depth counts (h, w) uint16."""

    frame_number: int
    timestamp_ms: float
    rgb: np.ndarray
    depth: np.ndarray | None = None


def intrinsics(width: int, height: int, hfov_deg: float = HFOV_DEG) -> rs.intrinsics:
    """Pinhole intrinsics with the principal point at the centre and square pixels."""
    focal = width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))
    intr = rs.intrinsics()
    intr.width = width
    intr.height = height
    intr.ppx = width / 2.0
    intr.ppy = height / 2.0
    intr.fx = focal
    intr.fy = focal
    intr.model = rs.distortion.none
    intr.coeffs = [0.0] * 5
    return intr


class EmulatedRealSense:
    """A software device with a colour sensor and (optionally) a depth sensor.

    The depth-to-colour extrinsics are registered so ``rs.align`` can map depth into the colour
    image; the depth sensor carries the ``depth_units`` option like a D4xx depth sensor does.
    """

    def __init__(self, config: EmulatedRealSenseConfig | None = None) -> None:
        self.config = config or EmulatedRealSenseConfig()
        cfg = self.config
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.serial_number, cfg.serial)
        self.device.register_info(rs.camera_info.name, cfg.product)
        self.depth_sensor: rs.software_sensor | None = None
        self.depth_profile: rs.video_stream_profile | None = None
        if cfg.depth:
            dw, dh = cfg.depth_size
            self.depth_sensor = self.device.add_sensor("Stereo Module")
            self.depth_profile = self.depth_sensor.add_video_stream(
                _video_stream(rs.stream.depth, _DEPTH_UID, dw, dh, cfg.fps, rs.format.z16, 2)
            ).as_video_stream_profile()
            self.depth_sensor.add_read_only_option(rs.option.depth_units, cfg.depth_units)
        self.colour_sensor = self.device.add_sensor("RGB Camera")
        self.colour_profile = self.colour_sensor.add_video_stream(
            _video_stream(
                rs.stream.color, _COLOUR_UID, cfg.width, cfg.height, cfg.fps, rs.format.rgb8, 3
            )
        ).as_video_stream_profile()
        if self.depth_profile is not None:
            extr = rs.extrinsics()
            extr.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
            extr.translation = [cfg.baseline_m, 0.0, 0.0]
            self.depth_profile.register_extrinsics_to(self.colour_profile, extr)
        self.device.create_matcher(rs.matchers.default)

    @property
    def serial(self) -> str:
        return self.config.serial

    def frame(self, frame_number: int, timestamp_ms: float | None = None) -> SyntheticFrame:
        """The test pattern for ``frame_number`` in this device's stream modes."""
        return pattern_frame(self.config, frame_number, timestamp_ms)

    def inject(self, frame: SyntheticFrame) -> None:
        """Push ``frame`` into the sensors (depth first, then colour, as a D4xx delivers them).

        The sensors must be streaming (started by a pipeline or by :func:`write_recording`);
        frames pushed into a stopped sensor are discarded by librealsense.
        """
        self._check_shapes(frame)
        if frame.depth is not None and self.depth_sensor is not None:
            assert self.depth_profile is not None
            self.depth_sensor.on_video_frame(
                _software_frame(frame, frame.depth, self.depth_profile, self.config.depth_units)
            )
        self.colour_sensor.on_video_frame(_software_frame(frame, frame.rgb, self.colour_profile))

    def _check_shapes(self, frame: SyntheticFrame) -> None:
        cfg = self.config
        want_rgb = (cfg.height, cfg.width, 3)
        if frame.rgb.shape != want_rgb or frame.rgb.dtype != np.uint8:
            raise ValueError(
                f"frame {frame.frame_number}: rgb must be {want_rgb} uint8, got "
                f"{frame.rgb.shape} {frame.rgb.dtype}"
            )
        if frame.depth is not None:
            if not cfg.depth:
                raise ValueError(f"frame {frame.frame_number} has depth but the device has none")
            dw, dh = cfg.depth_size
            if frame.depth.shape != (dh, dw) or frame.depth.dtype != np.uint16:
                raise ValueError(
                    f"frame {frame.frame_number}: depth must be {(dh, dw)} uint16, got "
                    f"{frame.depth.shape} {frame.depth.dtype}"
                )


def pattern_frame(
    config: EmulatedRealSenseConfig, frame_number: int, timestamp_ms: float | None = None
) -> SyntheticFrame:
    """:func:`pattern_rgb` and :func:`pattern_depth` for ``frame_number``.

    The default timestamp is ``1000 + n * period`` ms, so a skipped frame number also leaves a
    gap in time, as a frame dropped by a camera does.
    """
    if timestamp_ms is None:
        timestamp_ms = 1000.0 + frame_number * 1000.0 / config.fps
    depth = None
    if config.depth:
        dw, dh = config.depth_size
        depth = pattern_depth(frame_number, dw, dh, config.depth_units)
    rgb = pattern_rgb(frame_number, config.width, config.height)
    return SyntheticFrame(frame_number, timestamp_ms, rgb, depth)


def pattern_frames(
    config: EmulatedRealSenseConfig, frame_numbers: Iterable[int]
) -> list[SyntheticFrame]:
    """:func:`pattern_frame` for each of ``frame_numbers`` (leave one out to drop a frame)."""
    return [pattern_frame(config, n) for n in frame_numbers]


def pattern_rgb(frame_number: int, width: int, height: int) -> np.ndarray:
    """A frame whose content encodes its number and orientation.

    Background (200, n % 256, 50) in RGB order; an 8x8 blue square (0, 0, 255) whose column is
    ``(n * 4) % (width - 8)`` in the top rows; bottom-right quarter green (0, 255, 0). A channel
    swap, flip or transpose in a reader changes what a test reads back.
    """
    img = np.empty((height, width, 3), np.uint8)
    img[...] = (200, frame_number % 256, 50)
    img[height // 2 :, width // 2 :] = (0, 255, 0)
    col = square_column(frame_number, width)
    img[2:10, col : col + 8] = (0, 0, 255)
    return img


def square_column(frame_number: int, width: int) -> int:
    """Column of the blue square in :func:`pattern_rgb` for ``frame_number``."""
    return (frame_number * 4) % (width - 8)


def pattern_depth(frame_number: int, width: int, height: int, depth_units: float) -> np.ndarray:
    """A flat wall at ``500 + 10 * n`` millimetres, as raw counts of ``depth_units`` metres."""
    counts = round(pattern_depth_mm(frame_number) * 1e-3 / depth_units)
    return np.full((height, width), counts, np.uint16)


def pattern_depth_mm(frame_number: int) -> int:
    """Distance of the wall in :func:`pattern_depth` for ``frame_number``, in millimetres."""
    return 500 + 10 * frame_number


def write_recording(
    path: str | Path,
    frames: Iterable[SyntheticFrame],
    config: EmulatedRealSenseConfig | None = None,
) -> Path:
    """Record ``frames`` from an emulated device into a ``.db3`` file that playback can open.

    The recorder wraps the software device; its sensors are opened and started so frames
    injected into the software sensors pass through it into the file. The file is complete once
    the recorder is released, which happens before this function returns.
    """
    path = Path(path)
    if path.suffix != RECORDING_SUFFIX:
        raise ValueError(f"RealSense recordings must end in {RECORDING_SUFFIX}, got {path.name!r}")
    emulated = EmulatedRealSense(config)
    count = 0
    with _recording_sensors(path, emulated):
        for frame in frames:
            emulated.inject(frame)
            count += 1
    LOG.debug("recorded %d frames of %s into %s", count, emulated.serial, path)
    return path


@contextlib.contextmanager
def _recording_sensors(path: Path, emulated: EmulatedRealSense) -> Iterator[None]:
    """Stream the recorder's sensors for the duration of the block, then close the file."""
    recorder = rs.recorder(str(path), emulated.device)
    sensors: list[rs.sensor] = list(recorder.query_sensors())
    sink = rs.frame_queue(4096)  # keeps the frames alive until the recorder has written them
    started: list[rs.sensor] = []
    try:
        for sensor in sensors:
            sensor.open(sensor.get_stream_profiles()[0])
            sensor.start(sink)
            started.append(sensor)
        yield
    finally:
        for sensor in started:
            sensor.stop()
            sensor.close()
        del started, sensors, sink
        del recorder  # releasing the recorder flushes and closes the file


def _video_stream(
    stream: rs.stream, uid: int, width: int, height: int, fps: int, fmt: rs.format, bpp: int
) -> rs.video_stream:
    vs = rs.video_stream()
    vs.type = stream
    vs.index = 0
    vs.uid = uid
    vs.width = width
    vs.height = height
    vs.fps = fps
    vs.bpp = bpp
    vs.fmt = fmt
    vs.intrinsics = intrinsics(width, height)
    return vs


def _software_frame(
    frame: SyntheticFrame,
    pixels: np.ndarray,
    profile: rs.video_stream_profile,
    depth_units: float | None = None,
) -> rs.software_video_frame:
    """A software frame carrying a copy of ``pixels`` (the binding copies the buffer)."""
    pixels = np.ascontiguousarray(pixels)
    out = rs.software_video_frame()
    out.pixels = pixels
    out.bpp = pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1)
    out.stride = out.bpp * pixels.shape[1]
    out.timestamp = frame.timestamp_ms
    out.domain = rs.timestamp_domain.hardware_clock
    out.frame_number = frame.frame_number
    out.profile = profile
    if depth_units is not None:
        out.depth_units = depth_units
    return out


__all__ = [
    "RECORDING_SUFFIX",
    "EmulatedRealSense",
    "EmulatedRealSenseConfig",
    "SyntheticFrame",
    "intrinsics",
    "pattern_depth",
    "pattern_depth_mm",
    "pattern_frame",
    "pattern_frames",
    "pattern_rgb",
    "square_column",
    "write_recording",
]

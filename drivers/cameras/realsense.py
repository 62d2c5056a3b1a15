"""Intel RealSense D4xx camera: colour plus depth aligned to it, stamped by the camera's clock.

Why these choices:

* Colour and depth of one observation come from one ``pipeline`` frameset, and depth is
  reprojected into the colour image with ``rs.align`` so pixel (u, v) of both features sees the
  same point; a policy that stacks them never mixes two instants or two viewpoints.
* Timestamps are the frame's own timestamp (camera clock, or the host-synchronised "global
  time" D4xx firmware uses by default), converted from ms to s, not the time Python got the
  frame: USB and GIL jitter would otherwise leak into the recorded timing.
* Depth is returned in millimetres whatever the device's depth units are (D415/D435: 1 mm,
  D405: 0.1 mm), so datasets from different models mean the same thing.
* Dropped frames are counted from gaps in the colour frame number (:class:`FrameCounter`).
* Several cameras: each instance opens its own pipeline on one serial; :func:`connected_serials`
  lists what is plugged in.

A recording (``playback="x.db3"``) is played through ``rs.config.enable_device_from_file`` with
the streams it contains; ``real_time=False`` hands out the recorded frames in order without
pacing, which makes tests deterministic (librealsense can still skip frames when the reading
process is starved of CPU; they are then counted as dropped).

A device object (``device=``, e.g. a ``pyrealsense2.software_device``) can be streamed instead of
one found by serial, since software devices are not enumerated.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pyrealsense2 as rs

from drivers.cameras.stream import CameraError, EndOfStreamError, FrameCounter, FrameTimeoutError
from drivers.interfaces import Camera
from robot_learning.specs import FeatureSpec, SpecDict

LOG = logging.getLogger(__name__)

RECORDING_SUFFIX = ".db3"
DEFAULT_TIMEOUT_MS = 2000  # a D4xx delivers its first frames within ~1 s of starting

# colour formats a recording may hold -> channel order fix-up to RGB
_RGB_FORMATS: dict[Any, tuple[int, int, int]] = {
    rs.format.rgb8: (0, 1, 2),
    rs.format.bgr8: (2, 1, 0),
    rs.format.rgba8: (0, 1, 2),
    rs.format.bgra8: (2, 1, 0),
}


def connected_serials(context: rs.context | None = None) -> list[str]:
    """Serial numbers of the RealSense devices connected now (USB enumeration)."""
    ctx = context if context is not None else rs.context()
    return [dev.get_info(rs.camera_info.serial_number) for dev in ctx.query_devices()]


@dataclass(frozen=True)
class RealSenseConfig:
    """What to open and how; see :class:`RealSenseCamera` for the meaning of each field."""

    serial: str | None = None
    width: int = 640
    height: int = 480
    fps: int = 30
    depth: bool = True
    align_depth: bool = True
    depth_width: int | None = None
    depth_height: int | None = None
    playback: str | None = None
    real_time: bool = True
    repeat_playback: bool = False
    name: str = "camera"
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def __post_init__(self) -> None:
        for field in ("width", "height", "fps", "timeout_ms", "depth_width", "depth_height"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"RealSense {field} must be a positive integer, got {value!r}")
        if not self.name or not self.name.isidentifier():
            raise ValueError(
                f"camera name must be an identifier (feature prefix), got {self.name!r}"
            )
        if self.playback is not None and Path(self.playback).suffix != RECORDING_SUFFIX:
            raise ValueError(
                f"RealSense recording {self.playback!r} must be a {RECORDING_SUFFIX} file "
                "(librealsense picks the recording format from the extension)"
            )

    @property
    def depth_size(self) -> tuple[int, int]:
        """Requested (width, height) of the depth stream; defaults to the colour size."""
        return (self.depth_width or self.width, self.depth_height or self.height)


@dataclass
class _Capture:
    """One accepted frameset, copied out of librealsense's frame pool."""

    frame_number: int
    rgb: np.ndarray
    rgb_time: float
    depth: np.ndarray | None
    depth_time: float
    rgb_taken: bool = False
    depth_taken: bool = False


class RealSenseCamera(Camera):
    """A RealSense colour(+depth) camera, a recording of one, or a given device object.

    ``read()`` and ``read_depth()`` share framesets: each returns a new frameset's image unless
    the other one fetched a frameset whose image of this kind was not handed out yet, so
    ``read()`` followed by ``read_depth()`` gives colour and depth of the same instant.
    :meth:`read_rgbd` returns both at once.
    """

    def __init__(
        self,
        serial: str | None = None,
        *,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        depth: bool = True,
        align_depth: bool = True,
        depth_width: int | None = None,
        depth_height: int | None = None,
        playback: str | Path | None = None,
        real_time: bool = True,
        repeat_playback: bool = False,
        name: str = "camera",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        device: rs.device | None = None,
        context: rs.context | None = None,
    ) -> None:
        super().__init__()
        self.config = RealSenseConfig(
            serial=serial,
            width=width,
            height=height,
            fps=fps,
            depth=depth,
            align_depth=align_depth,
            depth_width=depth_width,
            depth_height=depth_height,
            playback=None if playback is None else str(playback),
            real_time=real_time,
            repeat_playback=repeat_playback,
            name=name,
            timeout_ms=timeout_ms,
        )
        if device is not None and playback is not None:
            raise ValueError("give either a device or a playback recording, not both")
        self._device = device
        self._context = context
        self._pipeline: rs.pipeline | None = None
        self._playback: rs.playback | None = None
        self._align: rs.align | None = None
        self._serial: str | None = None
        self._colour_size = (width, height)
        self._depth_size = self.config.depth_size
        self._fps = fps
        self._timestamp_domain = ""
        self._counter = FrameCounter(self.device_name)
        self._capture: _Capture | None = None

    @classmethod
    def from_config(cls, config: RealSenseConfig, **kwargs: Any) -> RealSenseCamera:
        """Build from a :class:`RealSenseConfig` (``kwargs``: ``device``, ``context``)."""
        return cls(**dataclasses.asdict(config), **kwargs)

    # ------------------------------------------------------------------ identity and state
    @property
    def device_name(self) -> str:
        what = self.config.playback or self.config.serial or "any"
        return f"RealSenseCamera({what})"

    @property
    def serial(self) -> str | None:
        """Serial number of the streaming device (known after connect)."""
        return self._serial or self.config.serial

    @property
    def has_depth(self) -> bool:
        return self.config.depth

    @property
    def dropped_frames(self) -> int:
        """Frames lost so far, from gaps in the colour frame numbers."""
        return self._counter.dropped_frames

    @property
    def frames_received(self) -> int:
        """Framesets handed out so far."""
        return self._counter.frames_received

    @property
    def timestamp_domain(self) -> str:
        """Clock of the last frame's timestamp (``hardware_clock``, ``global_time``, ...)."""
        return self._timestamp_domain

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> None:
        cfg = rs.config()
        pipeline = rs.pipeline(self._context) if self._context is not None else rs.pipeline()
        if self.config.playback is not None:
            label = self._configure_playback(cfg)
        else:
            label = self._configure_live(cfg, pipeline)
        try:
            if self.config.playback is not None:
                playback = cfg.resolve(pipeline).get_device().as_playback()
                playback.set_real_time(self.config.real_time)
                # paused until every sensor is started: otherwise the reader can hand the first
                # frames to a sensor the pipeline has not started yet, and they are lost
                playback.pause()
                self._playback = playback
            profile = pipeline.start(cfg)
            if self._playback is not None:
                self._playback.resume()
        except RuntimeError as exc:
            self._playback = None
            raise CameraError(f"cannot start RealSense {label}: {exc}{self._modes_hint()}") from exc
        try:
            self._read_profile(profile)
        except BaseException:
            self._playback = None
            pipeline.stop()
            raise
        self._pipeline = pipeline
        self._align = rs.align(rs.stream.color) if self._aligned else None
        self._counter = FrameCounter(self.device_name)
        self._capture = None
        LOG.info(
            "RealSense %s streaming colour %dx%d%s @ %d fps",
            self._serial,
            *self._colour_size,
            f" + depth {self._depth_size[0]}x{self._depth_size[1]}" if self.has_depth else "",
            self._fps,
        )

    def _disconnect(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        self._playback = None
        self._align = None
        self._capture = None
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError as exc:  # already stopped (device unplugged, recording ended)
                LOG.debug("stopping RealSense %s: %s", self._serial, exc)

    def _configure_playback(self, cfg: rs.config) -> str:
        path = Path(str(self.config.playback))
        if not path.is_file():
            raise CameraError(f"RealSense recording {str(path)!r} does not exist")
        cfg.enable_device_from_file(str(path), repeat_playback=self.config.repeat_playback)
        # a recording holds fixed stream modes: take them as recorded
        cfg.enable_stream(rs.stream.color)
        if self.config.depth:
            cfg.enable_stream(rs.stream.depth)
        return f"recording {str(path)!r}"

    def _configure_live(self, cfg: rs.config, pipeline: rs.pipeline) -> str:
        want = self.config.serial
        if self._device is not None:
            serial = _serial_of(self._device)
            if want is not None and serial != want:
                raise CameraError(f"the given RealSense device has serial {serial}, not {want}")
            pipeline.set_device(self._device)
        else:
            serials = connected_serials(self._context)
            if not serials:
                wanted = f" (wanted serial {want})" if want else ""
                raise CameraError(f"no RealSense camera connected{wanted}")
            if want is None:
                if len(serials) > 1:
                    raise CameraError(
                        f"{len(serials)} RealSense cameras connected ({', '.join(serials)}): "
                        "pass serial= to choose one"
                    )
                serial = serials[0]
            elif want not in serials:
                raise CameraError(
                    f"no RealSense with serial {want}; connected: {', '.join(serials)}"
                )
            else:
                serial = want
            cfg.enable_device(serial)
        self._serial = serial
        w, h = self.config.width, self.config.height
        cfg.enable_stream(rs.stream.color, w, h, rs.format.rgb8, self.config.fps)
        if self.config.depth:
            dw, dh = self.config.depth_size
            cfg.enable_stream(rs.stream.depth, dw, dh, rs.format.z16, self.config.fps)
        return serial

    def _read_profile(self, profile: rs.pipeline_profile) -> None:
        """Take sizes, rate and serial from what the device really streams."""
        self._serial = _serial_of(profile.get_device())
        colour = profile.get_stream(rs.stream.color).as_video_stream_profile()
        if colour.format() not in _RGB_FORMATS:
            raise CameraError(
                f"RealSense {self._serial} streams colour as {colour.format()}; supported: "
                f"{', '.join(str(f) for f in _RGB_FORMATS)}"
            )
        self._colour_size = (colour.width(), colour.height())
        self._fps = colour.fps()
        if self.config.depth:
            depth = profile.get_stream(rs.stream.depth).as_video_stream_profile()
            self._depth_size = (depth.width(), depth.height())

    @property
    def _aligned(self) -> bool:
        return self.config.depth and self.config.align_depth

    def _modes_hint(self) -> str:
        """'; supported modes: ...' for the device being opened, when it can be found."""
        device = self._device
        if self.config.playback is not None:
            try:
                device = rs.context().load_device(self.config.playback)
            except RuntimeError:
                return ""
        elif device is None and self._serial is not None:
            ctx = self._context if self._context is not None else rs.context()
            found = [d for d in ctx.query_devices() if _serial_of(d) == self._serial]
            device = found[0] if found else None
        if device is None:
            return ""
        modes = sorted({_describe_mode(p) for s in device.query_sensors() for p in s.profiles})
        if not modes:
            return ""
        what = "the recording holds" if self.config.playback else "supported modes"
        return f"; {what}: {', '.join(modes)}"

    # ------------------------------------------------------------------ spec and reads
    def observation_spec(self) -> SpecDict:
        self.require_connected("observation_spec")
        w, h = self._colour_size
        features = {
            f"{self.config.name}_rgb": FeatureSpec(
                (h, w, 3), "uint8", "rgb", description=f"RealSense {self._serial} colour"
            )
        }
        if self.has_depth:
            dw, dh = self._colour_size if self._aligned else self._depth_size
            aligned = "aligned to colour" if self._aligned else "depth sensor view"
            features[f"{self.config.name}_depth"] = FeatureSpec(
                (dh, dw), "uint16", "depth", description=f"millimetres, {aligned}"
            )
        return SpecDict(features)

    def read(self) -> tuple[np.ndarray, float]:
        """Colour (H, W, 3) uint8 RGB and its camera timestamp in seconds."""
        self.require_connected("read")
        capture = self._capture
        if capture is None or capture.rgb_taken:
            capture = self._next_capture()
        capture.rgb_taken = True
        return capture.rgb, capture.rgb_time

    def read_depth(self) -> tuple[np.ndarray, float]:
        """Depth (H, W) uint16 millimetres (0 = no data) and its camera timestamp in seconds."""
        self.require_connected("read_depth")
        if not self.has_depth:
            raise NotImplementedError(f"{self.device_name} was opened with depth=False")
        capture = self._capture
        if capture is None or capture.depth_taken:
            capture = self._next_capture()
        capture.depth_taken = True
        assert capture.depth is not None
        return capture.depth, capture.depth_time

    def read_rgbd(self) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Colour, depth (None without depth) and the colour timestamp of one new frameset."""
        self.require_connected("read_rgbd")
        capture = self._next_capture()
        capture.rgb_taken = capture.depth_taken = True
        return capture.rgb, capture.depth, capture.rgb_time

    def _next_capture(self) -> _Capture:
        """Wait for a frameset with a new colour frame (and its matching depth frame)."""
        assert self._pipeline is not None
        timeout_s = self.config.timeout_ms / 1000.0
        deadline = time.monotonic() + timeout_s
        half_period_ms = 500.0 / max(self._fps, 1)
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000.0)
            if remaining_ms <= 0:
                self._raise_no_frame()
            # no early exit when a recording reports "stopped": that only means its reader hit
            # the end of the file, and the frames it read last may still be queued
            ok, frames = self._pipeline.try_wait_for_frames(remaining_ms)
            if not ok:
                self._raise_no_frame()
            colour = frames.get_color_frame()
            if not colour or not self._counter.is_new(colour.get_frame_number()):
                continue  # a frameset completed by a depth frame alone
            if self.has_depth:
                depth = frames.get_depth_frame()
                if (
                    not depth
                    or abs(depth.get_timestamp() - colour.get_timestamp()) > half_period_ms
                ):
                    continue  # the syncer paired this colour frame with an older depth frame
            return self._capture_from(frames)

    def _capture_from(self, frames: rs.composite_frame) -> _Capture:
        if self._align is not None:
            frames = self._align.process(frames)
        colour = frames.get_color_frame()
        number = colour.get_frame_number()
        self._counter.count(number)
        self._timestamp_domain = str(colour.get_frame_timestamp_domain()).rsplit(".", 1)[-1]
        fmt = colour.get_profile().format()
        pixels = np.asanyarray(colour.get_data())
        rgb = np.ascontiguousarray(pixels[..., list(_RGB_FORMATS[fmt])])
        depth_mm: np.ndarray | None = None
        depth_time = 0.0
        if self.has_depth:
            depth = frames.get_depth_frame()
            depth_mm = _to_millimetres(np.asanyarray(depth.get_data()), depth.get_units())
            depth_time = depth.get_timestamp() / 1000.0
        self._capture = _Capture(number, rgb, colour.get_timestamp() / 1000.0, depth_mm, depth_time)
        return self._capture

    def _playback_ended(self) -> bool:
        """The recording was read to its end (a repeating one only pauses between passes)."""
        return (
            self._playback is not None
            and not self.config.repeat_playback
            and self._playback.current_status() == rs.playback_status.stopped
        )

    def _raise_no_frame(self) -> NoReturn:
        if self._playback_ended():
            raise EndOfStreamError(
                f"RealSense recording {self.config.playback!r} ended after "
                f"{self.frames_received} frames (pass repeat_playback=True to loop it)"
            )
        raise FrameTimeoutError(
            f"no frame from RealSense {self._serial} within {self.config.timeout_ms} ms"
        )


def _serial_of(device: rs.device) -> str:
    return str(device.get_info(rs.camera_info.serial_number))


def _describe_mode(profile: rs.stream_profile) -> str:
    stream = str(profile.stream_type()).rsplit(".", 1)[-1]
    fmt = str(profile.format()).rsplit(".", 1)[-1]
    if profile.is_video_stream_profile():
        video = profile.as_video_stream_profile()
        return f"{stream} {video.width()}x{video.height()} {fmt} @ {profile.fps()} fps"
    return f"{stream} {fmt} @ {profile.fps()} fps"


def _to_millimetres(raw: np.ndarray, units_m: float) -> np.ndarray:
    """Raw depth counts of ``units_m`` metres -> uint16 millimetres (saturating)."""
    scale = units_m * 1000.0
    if abs(scale - 1.0) < 1e-6:
        return np.array(raw, dtype=np.uint16, copy=True)
    mm = np.rint(raw.astype(np.float64) * scale)
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "RECORDING_SUFFIX",
    "RealSenseCamera",
    "RealSenseConfig",
    "connected_serials",
]

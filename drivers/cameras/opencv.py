"""Any camera OpenCV can open: UVC webcams, video files, image sequences and network streams.

Why these choices:

* Frames are returned as RGB: OpenCV decodes to BGR, and a policy trained on RGB datasets that is
  fed BGR frames fails silently (red and blue objects swap).
* The spec comes from the frame size the source really delivers after ``connect()``: UVC
  cameras fall back to another mode without telling, so a requested size that is not honoured
  is an error instead of a surprise in the dataset.
* Timestamps: for live sources (device index, ``/dev/videoN``, ``rtsp://``/``http://`` URLs)
  ``time.monotonic()`` taken when ``grab()`` returns, i.e. when the frame reached the host; for
  files the frame's media time (``CAP_PROP_POS_MSEC``), continued across loops, so replaying a
  file reproduces its timing exactly. Image sequences without a frame rate fall back to
  ``time.monotonic()``.
* Dropped frames: for live sources, reads that returned no frame; for files, gaps in the frame
  index derived from the media time (a frame the decoder could not decode).
* Live sources ask for a one-frame driver buffer so ``read()`` returns a recent frame, not one
  queued seconds ago.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from drivers.cameras.stream import CameraError, EndOfStreamError, FrameCounter
from drivers.interfaces import Camera
from robot_learning.specs import FeatureSpec, SpecDict

LOG = logging.getLogger(__name__)

SourceKind = Literal["device", "stream", "file"]
DEFAULT_MAX_FAILED_READS = 5


def video_devices() -> list[str]:
    """The ``/dev/video*`` nodes present (UVC cameras expose one or more each)."""
    return sorted(glob.glob("/dev/video*"))


def backend_id(backend: int | str | None) -> int:
    """``cv2.CAP_*`` id for a backend given as an id, a name (``"V4L2"``, ``"FFMPEG"``) or None."""
    if backend is None:
        return int(cv2.CAP_ANY)
    if isinstance(backend, int):
        return backend
    value = getattr(cv2, f"CAP_{backend.upper()}", None)
    if not isinstance(value, int):
        available = sorted(
            {cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends()}
        )
        raise ValueError(
            f"unknown OpenCV backend {backend!r}; backends in this OpenCV build: "
            f"{', '.join(available)} (or ANY)"
        )
    return value


def source_kind(source: int | str) -> SourceKind:
    """Classify a source: a capture device, a live network stream, or a file to play."""
    if isinstance(source, int) or source.isdigit() or source.startswith("/dev/"):
        return "device"
    if "://" in source and not source.startswith("file://"):
        return "stream"
    return "file"


@dataclass(frozen=True)
class OpenCVCameraConfig:
    """What to open and how; see :class:`OpenCVCamera` for the meaning of each field."""

    source: int | str = 0
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    name: str = "camera"
    loop: bool = False
    backend: int | str | None = None
    fourcc: str | None = None
    max_failed_reads: int = DEFAULT_MAX_FAILED_READS

    def __post_init__(self) -> None:
        for field in ("width", "height", "fps"):
            value = getattr(self, field)
            if value is not None and value <= 0:
                raise ValueError(f"OpenCV camera {field} must be positive, got {value!r}")
        if self.max_failed_reads < 1:
            raise ValueError(f"max_failed_reads must be >= 1, got {self.max_failed_reads}")
        if not self.name or not self.name.isidentifier():
            raise ValueError(
                f"camera name must be an identifier (feature prefix), got {self.name!r}"
            )
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ValueError(f"fourcc must be 4 characters (e.g. 'MJPG'), got {self.fourcc!r}")
        backend_id(self.backend)  # unknown names fail here, listing the valid ones

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.source)


class OpenCVCamera(Camera):
    """A colour camera read through ``cv2.VideoCapture``.

    ``source``: a device index (``0``), a device path (``/dev/video2``), a video file or image
    sequence pattern (``frames/%04d.png``), or a stream URL. ``width``/``height``/``fps`` are
    requested from devices (and checked against what is delivered); ``loop`` restarts files at
    their end instead of raising :class:`EndOfStreamError`; ``backend`` picks the OpenCV capture
    backend (``"V4L2"``, ``"FFMPEG"``, ``"IMAGES"`` or a ``cv2.CAP_*`` id); ``fourcc`` asks a UVC
    camera for a pixel format (``"MJPG"`` for high resolutions at full rate); a read gives up
    after ``max_failed_reads`` consecutive reads without a frame.
    """

    def __init__(
        self,
        source: int | str | Path = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        name: str = "camera",
        loop: bool = False,
        backend: int | str | None = None,
        fourcc: str | None = None,
        max_failed_reads: int = DEFAULT_MAX_FAILED_READS,
    ) -> None:
        super().__init__()
        if isinstance(source, Path):
            source = str(source)
        self.config = OpenCVCameraConfig(
            source=source,
            width=width,
            height=height,
            fps=fps,
            name=name,
            loop=loop,
            backend=backend,
            fourcc=fourcc,
            max_failed_reads=max_failed_reads,
        )
        self._cap: cv2.VideoCapture | None = None
        self._size = (0, 0)  # (width, height) actually delivered
        self._fps = 0.0
        self._counter = FrameCounter(self.device_name)
        self._pending: tuple[np.ndarray, float, int] | None = None
        self._loop_offset_s = 0.0
        self._last_index = -1
        self._loops = 0

    @classmethod
    def from_config(cls, config: OpenCVCameraConfig) -> OpenCVCamera:
        return cls(**dataclasses.asdict(config))

    # ------------------------------------------------------------------ identity and state
    @property
    def device_name(self) -> str:
        return f"OpenCVCamera({self.config.source!r})"

    @property
    def is_live(self) -> bool:
        """True for devices and network streams, False for files."""
        return self.config.kind != "file"

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the delivered frames (after connect)."""
        return self._size

    @property
    def fps(self) -> float:
        """Frame rate the source reports (0 when it reports none)."""
        return self._fps

    @property
    def loops(self) -> int:
        """How many times a looping file has been restarted."""
        return self._loops

    @property
    def dropped_frames(self) -> int:
        return self._counter.dropped_frames

    @property
    def frames_received(self) -> int:
        return self._counter.frames_received

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> None:
        cfg = self.config
        source: int | str = int(cfg.source) if _is_index(cfg.source) else cfg.source
        if cfg.kind == "file" and "%" not in str(source) and not Path(str(source)).is_file():
            raise CameraError(
                f"video file {str(source)!r} does not exist; /dev/video* present: "
                f"{_listing(video_devices())}"
            )
        cap = cv2.VideoCapture(source, backend_id(cfg.backend))
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"cannot open OpenCV source {cfg.source!r} (backend {cfg.backend or 'ANY'}); "
                f"/dev/video* present: {_listing(video_devices())}"
            )
        self._cap = cap
        try:
            self._configure(cap)
        except BaseException:
            self._cap = None
            cap.release()
            raise

    def _configure(self, cap: cv2.VideoCapture) -> None:
        cfg = self.config
        if cfg.kind == "device":
            if cfg.fourcc is not None:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.fourcc))
            if cfg.width is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            if cfg.height is not None:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            if cfg.fps is not None:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        if cfg.kind != "file":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._fps = max(float(cap.get(cv2.CAP_PROP_FPS)), 0.0)
        self._counter = FrameCounter(self.device_name)
        self._loop_offset_s, self._last_index, self._loops = 0.0, -1, 0
        # the first frame proves the source delivers images and gives their real size
        first = self._grab()
        if first is None:
            raise CameraError(
                f"OpenCV source {cfg.source!r} opened but delivered no frame "
                f"(for /dev/videoN: some nodes carry metadata only; present: "
                f"{_listing(video_devices())})"
            )
        height, width = first[0].shape[:2]
        self._size = (width, height)
        wanted = (cfg.width or width, cfg.height or height)
        if wanted != self._size:
            raise CameraError(
                f"OpenCV source {cfg.source!r} delivers {width}x{height} frames, not the "
                f"requested {wanted[0]}x{wanted[1]}"
            )
        if cfg.fps is not None and self._fps and abs(self._fps - cfg.fps) > 0.5:
            LOG.warning(
                "%s runs at %.1f fps, not the requested %.1f", self.device_name, self._fps, cfg.fps
            )
        # files hand out their first frame; a live source's probe frame is stale by now
        self._pending = None if self.is_live else first
        LOG.info(
            "%s open (%s): %dx%d @ %.1f fps, backend %s",
            self.device_name,
            cfg.kind,
            width,
            height,
            self._fps,
            cap.getBackendName(),
        )

    def _disconnect(self) -> None:
        cap, self._cap = self._cap, None
        self._pending = None
        if cap is not None:
            cap.release()

    # ------------------------------------------------------------------ spec and reads
    def observation_spec(self) -> SpecDict:
        self.require_connected("observation_spec")
        width, height = self._size
        return SpecDict(
            {
                f"{self.config.name}_rgb": FeatureSpec(
                    (height, width, 3), "uint8", "rgb", description=f"{self.config.source}"
                )
            }
        )

    def read(self) -> tuple[np.ndarray, float]:
        """The next frame as (H, W, 3) uint8 RGB and its timestamp in seconds (see module doc)."""
        self.require_connected("read")
        if self._pending is not None:
            frame, stamp, index = self._pending
            self._pending = None
        else:
            frame, stamp, index = self._read_with_retries()
        if self.is_live:
            self._counter.count_next()
        else:
            self._counter.count(index)
        return self._to_rgb(frame), stamp

    def _read_with_retries(self) -> tuple[np.ndarray, float, int]:
        failures = 0
        restarted = False
        while True:
            got = self._grab()
            if got is not None:
                return got
            failures += 1
            if self.is_live:
                self._counter.count_missing()
                if failures >= self.config.max_failed_reads:
                    raise CameraError(
                        f"no frame from OpenCV source {self.config.source!r} after {failures} "
                        "failed reads (camera unplugged or stream closed?)"
                    )
                continue
            if failures < self.config.max_failed_reads:
                continue  # an undecodable frame inside the file: try the next one
            if not self.config.loop:
                raise EndOfStreamError(
                    f"video file {self.config.source!r} ended after {self.frames_received} "
                    "frames (pass loop=True to restart it at the end)"
                )
            if restarted:
                raise CameraError(f"video file {self.config.source!r} has no readable frames")
            self._restart()
            restarted, failures = True, 0

    def _restart(self) -> None:
        """Rewind a file; later timestamps continue after its last frame."""
        assert self._cap is not None
        if self._fps > 0:
            self._loop_offset_s += (self._last_index + 1) / self._fps
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._counter.restart()
        self._last_index = -1
        self._loops += 1
        LOG.debug("%s: restarted at the end (loop %d)", self.device_name, self._loops)

    def _grab(self) -> tuple[np.ndarray, float, int] | None:
        """One frame with its timestamp and index, or None when the source gave nothing."""
        assert self._cap is not None
        cap = self._cap
        if not cap.grab():
            return None
        arrived = time.monotonic()
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            return None
        if self.is_live:
            return frame, arrived, 0
        msec = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._fps > 0 and msec >= 0:
            index = round(msec * self._fps / 1000.0)
            stamp = self._loop_offset_s + msec / 1000.0
        else:  # image sequences without timing
            index = int(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1
            stamp = arrived
        self._last_index = index
        return frame, stamp, index

    def _to_rgb(self, frame: np.ndarray) -> np.ndarray:
        width, height = self._size
        if frame.shape[:2] != (height, width):
            raise CameraError(
                f"OpenCV source {self.config.source!r} delivered a {frame.shape[1]}x"
                f"{frame.shape[0]} frame; its spec is {width}x{height} (the source changed "
                "resolution: reconnect to pick up the new size)"
            )
        if frame.ndim == 2 or frame.shape[2] == 1:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.shape[2] == 4:
            return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _is_index(source: Any) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and source.isdigit())


def _listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


__all__ = [
    "OpenCVCamera",
    "OpenCVCameraConfig",
    "backend_id",
    "source_kind",
    "video_devices",
]

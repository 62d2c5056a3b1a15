"""Camera-based tactile sensors over UVC (GelSight Mini, DIGIT) read through ``cv2.VideoCapture``.

A gel sensor is a camera looking at a lit elastomer, so contact shows as a change from the image
with nothing touching. Each frame is cropped (the housing and gel edge are not signal), resized to
``size`` (H, W), converted BGR -> RGB, and compared with a reference frame: the mean of the first
``reference_frames`` frames after connect (averaging removes sensor noise), recaptured on
:meth:`UVCTactile.rezero`. Two features come out:

* ``f"{name}_rgb"``: (H, W, 3) uint8, kind ``rgb``: the processed image, for vision encoders.
* ``f"{name}_diff"``: (H, W, 3) int16, kind ``tactile``: ``rint(frame - reference)`` in
  [-255, 255]. int16 keeps the sign (darkening and brightening mean different gel deformations)
  at half the size of float32, and is exact to one grey level.

``crop`` is ``(top, bottom, left, right)``, the fraction of the raw frame cut away on each side,
so one setting works in every UVC mode. ``source`` is a device index, ``/dev/videoN`` or a video
file (``loop`` rewinds a file at its end: recorded sessions as a stand-in sensor). Timestamps are
host capture time (``time.time()`` right after the frame is grabbed): UVC gives no usable clock.

Per-model defaults (override any of them):

* GelSight Mini: requests the 320x240 UVC mode at 25 fps (its other modes, up to 3280x2464, cost
  USB bandwidth the policy does not use), cuts 1/7 of each side (the housing edge, as in
  GelSight's own ``resize_crop_mini``) and resizes to 240x320.
* DIGIT: requests QVGA 320x240 at 60 fps (the other mode is VGA 640x480 at 30 fps), no crop (the
  gel fills the image), output 240x320.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.interfaces import TactileSensor
from robot_learning.specs import FeatureSpec, SpecDict
from robot_learning.types import Observation

LOG = logging.getLogger(__name__)

Crop = tuple[float, float, float, float]  # (top, bottom, left, right) fractions cut away


class UVCTactileError(RuntimeError):
    """The video source is missing, cannot be opened, or stopped delivering frames."""


@dataclass
class UVCTactileConfig:
    """Where frames come from and how they are processed (see the module docstring)."""

    source: int | str | os.PathLike[str]
    name: str
    size: tuple[int, int]  # output (H, W)
    crop: Crop = (0.0, 0.0, 0.0, 0.0)
    reference_frames: int = 10
    loop: bool = False
    capture_size: tuple[int, int] | None = None  # (W, H) UVC mode requested from a device
    fps: float | None = None  # frame rate requested from a device

    def validate(self) -> None:
        if not self.name:
            raise ValueError("name must be a non-empty feature prefix")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) with both >= 1, got {self.size}")
        if len(self.crop) != 4 or any(not 0.0 <= c < 1.0 for c in self.crop):
            raise ValueError(
                f"crop must be 4 fractions (top, bottom, left, right) in [0, 1), got {self.crop}"
            )
        top, bottom, left, right = self.crop
        if top + bottom >= 1.0 or left + right >= 1.0:
            raise ValueError(
                f"crop {self.crop} removes the whole frame (top+bottom and left+right must be < 1)"
            )
        if self.reference_frames < 1:
            raise ValueError(f"reference_frames must be >= 1, got {self.reference_frames}")


def video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"))


def crop_frame(frame: np.ndarray, crop: Crop) -> np.ndarray:
    """Cut the ``(top, bottom, left, right)`` fractions off ``frame``."""
    h, w = frame.shape[:2]
    top, bottom, left, right = crop
    y0, y1 = round(top * h), h - round(bottom * h)
    x0, x1 = round(left * w), w - round(right * w)
    return frame[y0:y1, x0:x1]


class UVCTactile(TactileSensor):
    """A gel tactile camera: processed RGB frame plus difference to a no-contact reference."""

    DEFAULT_NAME = "uvc_tactile"
    DEFAULT_SIZE: tuple[int, int] = (240, 320)
    DEFAULT_CROP: Crop = (0.0, 0.0, 0.0, 0.0)
    DEFAULT_CAPTURE_SIZE: tuple[int, int] | None = None
    DEFAULT_FPS: float | None = None

    def __init__(
        self,
        source: int | str | os.PathLike[str],
        name: str | None = None,
        size: tuple[int, int] | None = None,
        crop: Crop | None = None,
        reference_frames: int = 10,
        loop: bool = False,
        capture_size: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> None:
        super().__init__()
        self.config = UVCTactileConfig(
            source=source,
            name=name or self.DEFAULT_NAME,
            size=size or self.DEFAULT_SIZE,
            crop=crop if crop is not None else self.DEFAULT_CROP,
            reference_frames=reference_frames,
            loop=loop,
            capture_size=capture_size or self.DEFAULT_CAPTURE_SIZE,
            fps=fps or self.DEFAULT_FPS,
        )
        self.config.validate()
        self._cap: cv2.VideoCapture | None = None
        self._is_file = False
        self._reference: np.ndarray | None = None
        self.frames_read = 0

    @property
    def device_name(self) -> str:
        return f"{type(self).__name__}({self.config.source})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> None:
        self._cap = self._open(self.config.source)
        try:
            self.rezero()
        except BaseException:
            self._release()
            raise
        LOG.info(
            "%s streaming, reference from %d frames", self.device_name, self.config.reference_frames
        )

    def _disconnect(self) -> None:
        self._release()
        self._reference = None

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None

    def _open(self, source: int | str | os.PathLike[str]) -> cv2.VideoCapture:
        """Resolve ``source`` to a capture, with errors that list what would have worked."""
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self._is_file = False
        if isinstance(source, int):
            cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        elif source.startswith("/dev/video"):
            if not os.path.exists(source):
                raise UVCTactileError(
                    f"{type(self).__name__}: video device {source} does not exist; available: "
                    f"{video_devices() or 'none found'}"
                )
            cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        else:
            if not os.path.isfile(source):
                raise UVCTactileError(
                    f"{type(self).__name__}: source {source!r} is neither a device index, a "
                    f"/dev/videoN path nor an existing video file; video devices: "
                    f"{video_devices() or 'none found'}"
                )
            cap = cv2.VideoCapture(source)
            self._is_file = True
        if not cap.isOpened():
            cap.release()
            what = "video file (unsupported codec or not a video?)" if self._is_file else "device"
            raise UVCTactileError(
                f"{type(self).__name__}: cannot open {what} {source!r}; video devices: "
                f"{video_devices() or 'none found'}"
            )
        if not self._is_file:
            self._configure_device(cap)
        return cap

    def _configure_device(self, cap: cv2.VideoCapture) -> None:
        cfg = self.config
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # read() should return the newest frame, not a backlog
        if cfg.capture_size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.capture_size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.capture_size[1])
        if cfg.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if cfg.capture_size is not None and got != tuple(cfg.capture_size):
            LOG.warning(
                "%s: asked for %s, device streams %s", self.device_name, cfg.capture_size, got
            )

    # ---- frames --------------------------------------------------------------------------------
    def _grab(self) -> tuple[np.ndarray, float]:
        """The next processed RGB frame and its capture time."""
        assert self._cap is not None
        ok, frame = self._cap.read()
        if not ok and self._is_file and self.config.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        stamp = time.time()
        if not ok or frame is None:
            if self._is_file:
                raise UVCTactileError(
                    f"{self.device_name}: end of video file after {self.frames_read} frames "
                    "(pass loop=True to rewind)"
                )
            raise UVCTactileError(f"{self.device_name}: no frame from the camera (unplugged?)")
        self.frames_read += 1
        return self._process(frame), stamp

    def _process(self, frame: np.ndarray) -> np.ndarray:
        if frame.ndim == 2:  # some UVC modes deliver grey
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        frame = crop_frame(frame, self.config.crop)
        h, w = self.config.size
        interp = cv2.INTER_AREA if frame.shape[0] > h or frame.shape[1] > w else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (w, h), interpolation=interp)
        return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))

    @property
    def reference(self) -> np.ndarray:
        """The no-contact reference, (H, W, 3) float32 RGB."""
        self.require_connected("reference")
        assert self._reference is not None
        return self._reference.copy()

    def rezero(self, n_frames: int | None = None) -> np.ndarray:
        """Recapture the reference as the mean of the next ``n_frames`` (default
        ``reference_frames``); call it with nothing touching the gel (lighting drifts)."""
        if self._cap is None:
            self.require_connected("rezero")
        n = self.config.reference_frames if n_frames is None else n_frames
        if n < 1:
            raise ValueError(f"n_frames must be >= 1, got {n}")
        total = np.zeros((*self.config.size, 3), dtype=np.float64)
        for _ in range(n):
            total += self._grab()[0]
        self._reference = (total / n).astype(np.float32)
        return self._reference.copy()

    # ---- TactileSensor -------------------------------------------------------------------------
    def observation_spec(self) -> SpecDict:
        h, w = self.config.size
        name = self.config.name
        return SpecDict(
            {
                f"{name}_rgb": FeatureSpec((h, w, 3), "uint8", "rgb"),
                f"{name}_diff": FeatureSpec(
                    (h, w, 3),
                    "int16",
                    "tactile",
                    low=-255.0,
                    high=255.0,
                    description="RGB frame minus the no-contact reference, grey levels",
                ),
            }
        )

    def read(self) -> Observation:
        """The next frame and its difference image, both stamped with the capture time."""
        self.require_connected("read")
        assert self._reference is not None
        rgb, stamp = self._grab()
        diff = np.rint(rgb.astype(np.float32) - self._reference).astype(np.int16)
        name = self.config.name
        values = {f"{name}_rgb": rgb, f"{name}_diff": diff}
        return Observation(values=values, timestamps={k: stamp for k in values})


class GelSightMini(UVCTactile):
    """GelSight Mini: 320x240 UVC mode at 25 fps, 1/7 border cut, 240x320 output."""

    DEFAULT_NAME = "gelsight"
    DEFAULT_SIZE = (240, 320)
    DEFAULT_CROP = (1 / 7, 1 / 7, 1 / 7, 1 / 7)
    DEFAULT_CAPTURE_SIZE = (320, 240)
    DEFAULT_FPS = 25.0


class Digit(UVCTactile):
    """DIGIT: QVGA 320x240 at 60 fps, no crop, 240x320 output."""

    DEFAULT_NAME = "digit"
    DEFAULT_SIZE = (240, 320)
    DEFAULT_CROP = (0.0, 0.0, 0.0, 0.0)
    DEFAULT_CAPTURE_SIZE = (320, 240)
    DEFAULT_FPS = 60.0


__all__ = ["Crop", "Digit", "GelSightMini", "UVCTactile", "UVCTactileConfig", "UVCTactileError"]

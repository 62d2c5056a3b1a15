"""H.264 MP4 video files for LeRobot v3 datasets, through PyAV (FFmpeg's libraries).

Why here and not in the converter: LeRobot v3 keeps every episode of one camera in one MP4,
one after the other; an episode is the time range ``[from_timestamp, to_timestamp)`` of that
file. Writing appends frames with constant ``1/fps`` timestamps; reading walks the file forward,
so a whole-dataset import decodes each frame exactly once.

Encoding follows LeRobot's own settings where they matter for readers: ``yuv420p`` pixels (what
every decoder supports) and a short keyframe interval (``gop=2``) so random access during training
decodes at most one extra frame.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

LOG = logging.getLogger(__name__)
VIDEO_CODEC = "h264"
PIXEL_FORMAT = "yuv420p"
DEFAULT_CRF = 23
DEFAULT_GOP = 2


class VideoError(RuntimeError):
    """A video file cannot be written or read as a LeRobot camera stream."""


class VideoWriter:
    """Appends RGB frames (``H x W x 3`` uint8) to an H.264 MP4 at a constant frame rate."""

    def __init__(
        self,
        path: str | Path,
        fps: int,
        width: int,
        height: int,
        crf: int = DEFAULT_CRF,
        gop: int = DEFAULT_GOP,
    ) -> None:
        if width % 2 or height % 2:
            raise VideoError(
                f"{path}: H.264 yuv420p needs even frame sizes, got {width}x{height}; export "
                "with images instead of videos (--images)"
            )
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51 (lower is better quality), got {crf}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = int(fps)
        self.width, self.height = int(width), int(height)
        self.n_frames = 0
        self._container: Any = av.open(str(self.path), mode="w")
        stream: Any = self._container.add_stream(
            VIDEO_CODEC, rate=self.fps, options={"crf": str(crf), "g": str(gop)}
        )
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = PIXEL_FORMAT
        stream.time_base = Fraction(1, self.fps)
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one frame; its timestamp is ``n_frames / fps``."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise VideoError(
                f"{self.path}: frame {self.n_frames} is {frame.shape} {frame.dtype}, expected "
                f"({self.height}, {self.width}, 3) uint8"
            )
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.n_frames
        vf.time_base = Fraction(1, self.fps)
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.n_frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class VideoReader:
    """Reads frame ranges of one MP4 by frame number (``round(t * fps)``), walking forward.

    Reading ranges in increasing order decodes every frame once; asking for an earlier frame
    reopens the file (correct, just slower).
    """

    def __init__(self, path: str | Path, fps: int) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"video file {self.path} does not exist")
        self.fps = int(fps)
        self._container: Any = None
        self._frames: Any = None
        self._next = 0  # frame number the iterator yields next
        self._pending: np.ndarray | None = None

    def _open(self) -> None:
        self.close()
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot open video {self.path}: {exc}") from exc
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._time_base = stream.time_base
        self._frames = self._container.decode(stream)
        self._next = 0
        self._pending = None

    def _frame_number(self, frame: Any) -> int:
        if frame.pts is None:
            return self._next
        return round(float(frame.pts * self._time_base) * self.fps)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop-1`` as ``[n, H, W, 3]`` uint8."""
        if stop <= start:
            raise ValueError(f"empty frame range {start}..{stop} of {self.path}")
        if self._frames is None or start < self._next:
            self._open()
        out: list[np.ndarray] = []
        while len(out) < stop - start:
            number, image = self._next_frame(start, stop)
            if number >= start:
                out.append(image)
        return np.stack(out)

    def _next_frame(self, start: int, stop: int) -> tuple[int, np.ndarray]:
        try:
            frame = next(self._frames)
        except StopIteration:
            raise VideoError(
                f"{self.path} ends at frame {self._next}; frames {start}..{stop - 1} were "
                "requested (episode time range beyond the video)"
            ) from None
        number = self._frame_number(frame)
        if number != self._next and number >= start:
            raise VideoError(
                f"{self.path}: expected frame {self._next} but decoded frame {number} (t="
                f"{float(frame.pts * self._time_base):.4f} s); the video is not at a constant "
                f"{self.fps} fps"
            )
        self._next = number + 1
        return number, frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def video_info(path: str | Path) -> dict[str, Any]:
    """The ``info`` block LeRobot keeps per video feature in ``meta/info.json``."""
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        return {
            "video.height": int(stream.height),
            "video.width": int(stream.width),
            "video.codec": str(stream.codec_context.codec.canonical_name),
            "video.pix_fmt": str(stream.pix_fmt),
            "video.is_depth_map": False,
            "video.fps": int(stream.base_rate or stream.average_rate or 0),
            "video.channels": 3,
            "has_audio": bool(container.streams.audio),
        }


__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_GOP",
    "PIXEL_FORMAT",
    "VIDEO_CODEC",
    "VideoError",
    "VideoReader",
    "VideoWriter",
    "video_info",
]

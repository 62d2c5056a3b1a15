"""Frame-stream bookkeeping shared by the camera drivers: dropped-frame counting and errors.

Why: a camera that silently loses frames makes recorded demonstrations jerky and policies see
stale images. Every driver counts what it lost the same way, so one number means the same thing
for a RealSense (frame-number gaps), a webcam (reads that returned nothing) or a video file
(frame-index gaps), and their errors share one base class a caller can catch.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger(__name__)


class CameraError(RuntimeError):
    """A camera cannot be opened or stopped delivering usable frames."""


class FrameTimeoutError(CameraError):
    """No frame arrived within the read timeout."""


class EndOfStreamError(CameraError):
    """A recording or video file has no more frames (and looping is off)."""


class FrameCounter:
    """Counts received frames and the frames lost between them.

    Frame numbers come from the source (sensor counter, file index). A jump from ``n`` to ``m >
    n + 1`` adds ``m - n - 1`` dropped frames. A number that goes backwards means the source
    restarted (device reset, looped file): counting resumes from it without adding drops.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.frames_received = 0
        self.dropped_frames = 0
        self.last_frame_number: int | None = None

    def is_new(self, frame_number: int) -> bool:
        """Whether ``frame_number`` differs from the last counted one (a repeat is stale)."""
        return frame_number != self.last_frame_number

    def count(self, frame_number: int) -> int:
        """Count a received frame; return how many frames were lost just before it."""
        lost = 0
        last = self.last_frame_number
        if last is not None and frame_number > last + 1:
            lost = frame_number - last - 1
            self.dropped_frames += lost
            LOG.warning(
                "%s: %d frame(s) dropped between frames %d and %d",
                self.source,
                lost,
                last,
                frame_number,
            )
        elif last is not None and frame_number <= last:
            LOG.debug("%s: frame number went from %d to %d", self.source, last, frame_number)
        self.last_frame_number = frame_number
        self.frames_received += 1
        return lost

    def count_next(self) -> None:
        """Count a received frame from a source without frame numbers (a live webcam)."""
        self.count(0 if self.last_frame_number is None else self.last_frame_number + 1)

    def count_missing(self, n: int = 1) -> None:
        """Count ``n`` frames the source failed to deliver (a read that returned nothing)."""
        self.dropped_frames += n

    def restart(self) -> None:
        """Forget the last frame number (after a seek or reopen) but keep the totals."""
        self.last_frame_number = None


__all__ = ["CameraError", "EndOfStreamError", "FrameCounter", "FrameTimeoutError"]

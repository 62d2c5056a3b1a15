"""OpenCVCamera on real video written by cv2.VideoWriter (MJPG in .avi), PNG image sequences and
a live MJPEG-over-HTTP stream served like an IP camera: RGB order, frame order and timing,
looping, dropped frames and error messages."""

from __future__ import annotations

import http.server
import itertools
import re
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from drivers.cameras.opencv import OpenCVCamera, source_kind, video_devices  # noqa: E402
from drivers.cameras.stream import CameraError, EndOfStreamError  # noqa: E402
from drivers.interfaces import DeviceNotConnectedError  # noqa: E402
from drivers.registry import make_camera  # noqa: E402

W, H, FPS = 64, 48, 20.0
STEP = 4  # the green square moves STEP pixels per frame


def frame_bgr(index: int) -> np.ndarray:
    """Pure red background (BGR order, as OpenCV writes) with a green square at x = STEP*index."""
    img = np.zeros((H, W, 3), np.uint8)
    img[...] = (0, 0, 255)
    x = STEP * index
    img[16:32, x : x + 8] = (0, 255, 0)
    return img


def square_index(rgb: np.ndarray) -> int:
    """Frame index encoded by :func:`frame_bgr`, read back from an RGB frame."""
    green = (rgb[20:28, :, 1] > 128) & (rgb[20:28, :, 0] < 128)
    cols = np.flatnonzero(green.any(axis=0))
    assert cols.size, "no green square in frame"
    return round((cols.mean() - 3.5) / STEP)


def write_avi(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(frame_bgr(i))
    writer.release()
    return path


def corrupt_avi_frame(path: Path, index: int) -> None:
    """Zero the JPEG payload of frame ``index`` (its '00dc' chunk) so the decoder rejects it."""
    data = bytearray(path.read_bytes())
    pos = data.index(b"movi") + 4
    for _ in range(index + 1):
        chunk = data.index(b"00dc", pos)
        size = struct.unpack("<I", data[chunk + 4 : chunk + 8])[0]
        start, pos = chunk + 8, chunk + 8 + size
    data[start:pos] = bytes(pos - start)
    path.write_bytes(bytes(data))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_avi(tmp_path / "clip.avi", 10)


def test_file_frames_in_rgb_order_with_media_timestamps(video: Path) -> None:
    cam = make_camera("opencv", source=str(video))
    assert isinstance(cam, OpenCVCamera) and not cam.is_live
    with pytest.raises(DeviceNotConnectedError, match="observation_spec"):
        cam.observation_spec()
    with cam:
        spec = cam.observation_spec()
        assert spec.names() == ["camera_rgb"]
        assert (spec["camera_rgb"].shape, spec["camera_rgb"].dtype) == ((H, W, 3), "uint8")
        assert spec["camera_rgb"].kind == "rgb"
        assert cam.frame_size == (W, H) and cam.fps == pytest.approx(FPS)
        for i in range(10):
            rgb, stamp = cam.read()
            spec.validate({"camera_rgb": rgb})
            # written as pure red: channel 0 is R after the BGR -> RGB conversion
            r, g, b = (int(v) for v in rgb[2, 2])
            assert r > 240 and g < 20 and b < 20, rgb[2, 2]
            assert square_index(rgb) == i
            assert stamp == pytest.approx(i / FPS)
        assert (cam.frames_received, cam.dropped_frames) == (10, 0)
        with pytest.raises(EndOfStreamError, match=r"ended after 10 frames .*loop=True"):
            cam.read()


def test_loop_restarts_the_file_and_time_keeps_running(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "short.avi", 4)
    with OpenCVCamera(path, loop=True, name="scene") as cam:
        assert cam.observation_spec().names() == ["scene_rgb"]
        reads = [cam.read() for _ in range(10)]
        assert [square_index(rgb) for rgb, _ in reads] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
        stamps = [stamp for _, stamp in reads]
        assert stamps == pytest.approx([k / FPS for k in range(10)])
        assert cam.loops == 2
        assert (cam.frames_received, cam.dropped_frames) == (10, 0)


def test_undecodable_frame_counts_as_dropped(tmp_path: Path) -> None:
    path = write_avi(tmp_path / "damaged.avi", 8)
    corrupt_avi_frame(path, 4)
    with OpenCVCamera(path) as cam:
        reads = [cam.read() for _ in range(7)]
        assert [square_index(rgb) for rgb, _ in reads] == [0, 1, 2, 3, 5, 6, 7]
        assert reads[4][1] == pytest.approx(5 / FPS)  # the gap stays visible in time
        assert (cam.frames_received, cam.dropped_frames) == (7, 1)
        with pytest.raises(EndOfStreamError):
            cam.read()


def test_image_sequence_that_changes_size_is_an_error(tmp_path: Path) -> None:
    for i in range(3):
        img = frame_bgr(i) if i < 2 else cv2.resize(frame_bgr(i), (W // 2, H // 2))
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), img)
    with OpenCVCamera(str(tmp_path / "img_%03d.png"), backend="IMAGES") as cam:
        first, _ = cam.read()
        np.testing.assert_array_equal(first, cv2.cvtColor(frame_bgr(0), cv2.COLOR_BGR2RGB))
        assert square_index(cam.read()[0]) == 1
        with pytest.raises(CameraError, match="delivered a 32x24 frame; its spec is 64x48"):
            cam.read()


def test_open_errors_name_the_source_and_the_video_devices(tmp_path: Path, video: Path) -> None:
    devices = ", ".join(video_devices()) or "none"
    missing = tmp_path / "missing.avi"
    with pytest.raises(CameraError, match=re.escape(f"/dev/video* present: {devices}")) as err:
        OpenCVCamera(missing).connect()
    assert f"video file {str(missing)!r} does not exist" in str(err.value)
    not_video = tmp_path / "notes.avi"
    not_video.write_text("not a video")
    with pytest.raises(CameraError, match=r"cannot open OpenCV source '.*notes\.avi'"):
        OpenCVCamera(not_video).connect()
    if not video_devices():
        with pytest.raises(CameraError, match=r"cannot open OpenCV source 7 .*present: none"):
            OpenCVCamera(7).connect()
    with pytest.raises(CameraError, match="delivers 64x48 frames, not the requested 640x480"):
        OpenCVCamera(video, width=640, height=480).connect()
    with pytest.raises(ValueError, match=r"unknown OpenCV backend 'NOPE'.*FFMPEG"):
        OpenCVCamera(video, backend="NOPE")
    with pytest.raises(ValueError, match="identifier"):
        OpenCVCamera(video, name="front camera")
    assert [source_kind(s) for s in (0, "2", "/dev/video0", "rtsp://cam/1", "a.mp4")] == [
        "device",
        "device",
        "device",
        "stream",
        "file",
    ]


class _MJPEGHandler(http.server.BaseHTTPRequestHandler):
    """An IP camera's MJPEG endpoint: multipart/x-mixed-replace JPEG parts, then hang up."""

    frames = 6
    period_s = 0.02

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(self.frames):
            ok, jpeg = cv2.imencode(".jpg", frame_bgr(i))
            assert ok
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
            try:
                self.wfile.write(head + jpeg.tobytes() + b"\r\n")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(self.period_s)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mjpeg_url() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MJPEGHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_live_stream_uses_arrival_time_and_counts_failed_reads(mjpeg_url: str) -> None:
    cam = OpenCVCamera(mjpeg_url, backend="FFMPEG", max_failed_reads=3)
    assert cam.is_live
    with cam:
        assert cam.observation_spec()["camera_rgb"].shape == (H, W, 3)
        indices, stamps = [], []
        for _ in range(5):  # frame 0 was the probe read on connect
            before = time.monotonic()
            rgb, stamp = cam.read()
            assert before <= stamp <= time.monotonic()
            assert rgb[2, 2, 0] > 240 and rgb[2, 2, 2] < 20  # red stays red on the live path
            indices.append(square_index(rgb))
            stamps.append(stamp)
        assert indices == [1, 2, 3, 4, 5]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        # the camera hung up: every read now returns nothing
        with pytest.raises(CameraError, match="after 3 failed reads"):
            cam.read()
        assert (cam.frames_received, cam.dropped_frames) == (5, 3)

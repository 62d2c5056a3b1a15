"""RealSenseCamera against the real pyrealsense2 stack: recordings of an emulated software device
played back through ``enable_device_from_file``, and a live software device streamed by the
pipeline. Pixels, millimetre depth, alignment, camera timestamps, dropped frames and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2")

from drivers.cameras.realsense import RealSenseCamera, connected_serials  # noqa: E402
from drivers.cameras.stream import CameraError, EndOfStreamError, FrameTimeoutError  # noqa: E402
from drivers.emulators.realsense_device import (  # noqa: E402
    EmulatedRealSense,
    EmulatedRealSenseConfig,
    SyntheticFrame,
    intrinsics,
    pattern_depth_mm,
    pattern_frames,
    pattern_rgb,
    write_recording,
)
from drivers.interfaces import DeviceNotConnectedError  # noqa: E402
from drivers.registry import make_camera  # noqa: E402

# a D405-like camera: depth counts of 0.1 mm at half the colour resolution
D405 = EmulatedRealSenseConfig(serial="EMU405", depth_width=32, depth_height=24, depth_units=0.0001)
RECORDED = [0, 1, 2, 4, 5, 6]  # frame 3 is dropped on purpose


def stamp_s(config: EmulatedRealSenseConfig, n: int) -> float:
    return (1000.0 + n * 1000.0 / config.fps) / 1000.0


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_recording(tmp_path / "d405.db3", pattern_frames(D405, RECORDED), D405)


def test_playback_pixels_depth_timestamps_and_dropped_frames(recording: Path) -> None:
    cam = make_camera(
        "realsense", playback=str(recording), real_time=False, name="wrist", timeout_ms=1000
    )
    assert isinstance(cam, RealSenseCamera)
    with pytest.raises(DeviceNotConnectedError, match="read"):
        cam.read()
    with cam:
        spec = cam.observation_spec()
        assert spec.names() == ["wrist_rgb", "wrist_depth"]
        assert (spec["wrist_rgb"].shape, spec["wrist_rgb"].dtype) == ((48, 64, 3), "uint8")
        assert spec["wrist_rgb"].kind == "rgb"
        # depth is aligned to colour, so it has the colour resolution, not the sensor's 32x24
        assert (spec["wrist_depth"].shape, spec["wrist_depth"].dtype) == ((48, 64), "uint16")
        assert spec["wrist_depth"].kind == "depth"
        assert cam.has_depth and cam.serial == "EMU405"
        drops = []
        for n in RECORDED:
            rgb, t_rgb = cam.read()
            depth, t_depth = cam.read_depth()
            spec.validate({"wrist_rgb": rgb, "wrist_depth": depth})
            np.testing.assert_array_equal(rgb, pattern_rgb(n, 64, 48))
            # 0.1 mm counts come back as millimetres
            assert np.all(depth == pattern_depth_mm(n)), (n, np.unique(depth))
            assert t_rgb == pytest.approx(stamp_s(D405, n), abs=1e-6)
            assert t_depth == pytest.approx(t_rgb, abs=1e-6)
            drops.append(cam.dropped_frames)
        assert drops == [0, 0, 0, 1, 1, 1]
        assert cam.frames_received == len(RECORDED)
        assert cam.timestamp_domain == "hardware_clock"
        with pytest.raises(EndOfStreamError, match=r"ended after 6 frames.*repeat_playback"):
            cam.read()
    assert not cam.is_connected


def test_unaligned_depth_keeps_the_depth_sensor_resolution(recording: Path) -> None:
    with RealSenseCamera(playback=recording, real_time=False, align_depth=False) as cam:
        assert cam.observation_spec()["camera_depth"].shape == (24, 32)
        depth, _ = cam.read_depth()
        assert depth.shape == (24, 32)
        assert np.all(depth == pattern_depth_mm(0))


def test_alignment_reprojects_depth_through_the_extrinsics(tmp_path: Path) -> None:
    """With a 5 cm baseline the wall at 0.5 m shifts by fx * b / z pixels in the colour image,
    leaving a band of holes (0) that only a real reprojection produces."""
    config = EmulatedRealSenseConfig(baseline_m=0.05, depth_width=32, depth_height=24)
    path = write_recording(tmp_path / "baseline.db3", pattern_frames(config, [0]), config)
    shift_px = intrinsics(64, 48).fx * 0.05 / (pattern_depth_mm(0) / 1000.0)
    with RealSenseCamera(playback=path, real_time=False) as cam:
        aligned, _ = cam.read_depth()
    hole_columns = np.flatnonzero(np.all(aligned == 0, axis=0))
    assert hole_columns.tolist() == list(range(int(shift_px))), (hole_columns, shift_px)
    assert np.all(aligned[:, int(shift_px) :] == pattern_depth_mm(0))
    with RealSenseCamera(playback=path, real_time=False, align_depth=False) as cam:
        raw, _ = cam.read_depth()
    assert np.all(raw == pattern_depth_mm(0))


def test_read_and_read_depth_share_one_frameset(recording: Path) -> None:
    with RealSenseCamera(playback=recording, real_time=False) as cam:
        rgb, _ = cam.read()
        depth, _ = cam.read_depth()
        assert (rgb[0, 0, 1], depth[0, 0]) == (0, pattern_depth_mm(0))
        depth, _ = cam.read_depth()  # depth first this time: read() pairs with it
        rgb, _ = cam.read()
        assert (rgb[0, 0, 1], depth[0, 0]) == (1, pattern_depth_mm(1))
        cam.read()  # a second colour read moves on to the next frameset
        rgb, _ = cam.read()
        assert rgb[0, 0, 1] == 4
        rgb, depth_or_none, stamp = cam.read_rgbd()
        assert depth_or_none is not None
        assert (rgb[0, 0, 1], depth_or_none[0, 0]) == (5, pattern_depth_mm(5))
        assert stamp == pytest.approx(stamp_s(D405, 5), abs=1e-6)
        assert cam.dropped_frames == 1


def test_colour_only_camera_on_a_recording_with_depth(recording: Path) -> None:
    with RealSenseCamera(playback=recording, real_time=False, depth=False) as cam:
        assert cam.observation_spec().names() == ["camera_rgb"]
        assert not cam.has_depth
        rgb, _ = cam.read()
        np.testing.assert_array_equal(rgb, pattern_rgb(0, 64, 48))
        with pytest.raises(NotImplementedError, match="depth=False"):
            cam.read_depth()


def test_repeat_playback_loops_without_counting_drops(tmp_path: Path) -> None:
    config = EmulatedRealSenseConfig(depth=False)
    path = write_recording(tmp_path / "short.db3", pattern_frames(config, [0, 1, 2]), config)
    with RealSenseCamera(playback=path, real_time=False, repeat_playback=True, depth=False) as cam:
        greens = [int(cam.read()[0][0, 0, 1]) for _ in range(7)]
        assert greens == [0, 1, 2, 0, 1, 2, 0]
        assert (cam.frames_received, cam.dropped_frames) == (7, 0)


def test_two_cameras_stream_at_once(tmp_path: Path) -> None:
    left = EmulatedRealSenseConfig(serial="LEFT")
    right = EmulatedRealSenseConfig(serial="RIGHT", width=32, height=24, depth=False)
    left_path = write_recording(tmp_path / "left.db3", pattern_frames(left, range(4)), left)
    right_path = write_recording(
        tmp_path / "right.db3", pattern_frames(right, range(10, 14)), right
    )
    with (
        RealSenseCamera(playback=left_path, real_time=False, name="left") as cam_l,
        RealSenseCamera(playback=right_path, real_time=False, depth=False, name="right") as cam_r,
    ):
        assert (cam_l.serial, cam_r.serial) == ("LEFT", "RIGHT")
        assert cam_l.observation_spec()["left_rgb"].shape == (48, 64, 3)
        assert cam_r.observation_spec().names() == ["right_rgb"]
        assert cam_r.observation_spec()["right_rgb"].shape == (24, 32, 3)
        for k in range(4):
            rgb_r, t_r = cam_r.read()
            rgb_l, t_l = cam_l.read()
            np.testing.assert_array_equal(rgb_l, pattern_rgb(k, 64, 48))
            np.testing.assert_array_equal(rgb_r, pattern_rgb(10 + k, 32, 24))
            assert t_r - t_l == pytest.approx(10 / 30, abs=1e-6)


def test_live_software_device_frames_drops_and_timeout() -> None:
    emulated = EmulatedRealSense(EmulatedRealSenseConfig(serial="EMU1"))
    cam = RealSenseCamera(
        "EMU1", width=64, height=48, device=emulated.device, timeout_ms=200, name="front"
    )
    with cam:
        assert cam.observation_spec()["front_depth"].shape == (48, 64)
        received = []
        for n in [0, 1, 2, 5, 6]:  # frames 3 and 4 never arrive
            emulated.inject(emulated.frame(n))
            rgb, stamp = cam.read()
            depth, _ = cam.read_depth()
            received.append((int(rgb[0, 0, 1]), int(depth[0, 0]), cam.dropped_frames))
            assert stamp == pytest.approx(stamp_s(emulated.config, n), abs=1e-6)
        assert received == [
            (0, 500, 0),
            (1, 510, 0),
            (2, 520, 0),
            (5, 550, 2),
            (6, 560, 2),
        ]
        with pytest.raises(FrameTimeoutError, match="no frame from RealSense EMU1 within 200 ms"):
            cam.read()
        # a colour frame whose depth partner never came is not handed out with stale depth
        colour_only = SyntheticFrame(7, stamp_s(emulated.config, 7) * 1000, pattern_rgb(7, 64, 48))
        emulated.inject(colour_only)
        with pytest.raises(FrameTimeoutError):
            cam.read()
        emulated.inject(emulated.frame(8))
        rgb, _ = cam.read()
        assert rgb[0, 0, 1] == 8
        assert cam.dropped_frames == 3


def test_device_selection_errors() -> None:
    emulated = EmulatedRealSense(EmulatedRealSenseConfig(serial="EMU2"))
    with pytest.raises(CameraError, match="has serial EMU2, not 999"):
        RealSenseCamera("999", width=64, height=48, device=emulated.device).connect()
    with pytest.raises(
        CameraError,
        match=r"cannot start RealSense EMU2.*supported modes: .*"
        r"color 64x48 rgb8 @ 30 fps",
    ):
        RealSenseCamera(width=640, height=480, device=emulated.device).connect()
    if connected_serials():
        pytest.skip("a RealSense is plugged in: the no-device errors cannot be checked")
    with pytest.raises(CameraError, match=r"no RealSense camera connected$"):
        RealSenseCamera().connect()
    with pytest.raises(CameraError, match=r"no RealSense camera connected \(wanted serial 123\)"):
        RealSenseCamera("123").connect()


def test_recording_errors(tmp_path: Path, recording: Path) -> None:
    with pytest.raises(ValueError, match=r"must be a \.db3 file"):
        RealSenseCamera(playback=tmp_path / "x.bag")
    with pytest.raises(CameraError, match=r"recording .*missing\.db3' does not exist"):
        RealSenseCamera(playback=tmp_path / "missing.db3").connect()
    with pytest.raises(ValueError, match="either a device or a playback"):
        RealSenseCamera(playback=recording, device=EmulatedRealSense().device)
    colour_only = EmulatedRealSenseConfig(depth=False)
    path = write_recording(tmp_path / "rgb.db3", pattern_frames(colour_only, [0]), colour_only)
    with pytest.raises(CameraError, match=r"the recording holds: color 64x48 rgb8 @ 30 fps$"):
        RealSenseCamera(playback=path).connect()
    with pytest.raises(ValueError, match="positive integer"):
        RealSenseCamera(width=0)


def test_emulator_rejects_frames_that_do_not_match_its_streams(tmp_path: Path) -> None:
    emulated = EmulatedRealSense(EmulatedRealSenseConfig(depth=False))
    bad = SyntheticFrame(0, 0.0, np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64), np.uint16))
    with pytest.raises(ValueError, match="has depth but the device has none"):
        emulated.inject(bad)
    with pytest.raises(ValueError, match=r"rgb must be \(48, 64, 3\) uint8"):
        emulated.inject(SyntheticFrame(0, 0.0, np.zeros((48, 64), np.uint8)))
    with pytest.raises(ValueError, match=r"must end in \.db3"):
        write_recording(tmp_path / "x.bag", [])

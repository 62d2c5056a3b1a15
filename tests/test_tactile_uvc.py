"""UVC gel sensors (GelSight Mini, DIGIT): the real cv2.VideoCapture on synthetic MJPG videos."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.interfaces import DeviceNotConnectedError
from drivers.tactile.uvc import Digit, GelSightMini, UVCTactile, UVCTactileError

H, W = 120, 160
GEL_BGR = (90, 140, 200)  # a warm gel colour, BGR as OpenCV writes it
BLOB_BGR = (20, 40, 250)
BLOB = (slice(45, 75), slice(65, 95))  # rows, cols of the contact blob in the raw frame


def gel(brightness: float = 1.0) -> np.ndarray:
    frame = np.empty((H, W, 3), dtype=np.uint8)
    frame[:] = np.clip(np.array(GEL_BGR) * brightness, 0, 255).astype(np.uint8)
    return frame


def with_blob(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    out[BLOB] = BLOB_BGR
    return out


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi here"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture
def contact_video(tmp_path: Path) -> Path:
    """8 frames of untouched gel, then a blob (contact) from frame 8 on; 12 frames in all."""
    frames = [gel() for _ in range(8)] + [with_blob(gel()) for _ in range(4)]
    return write_video(tmp_path / "contact.avi", frames)


def test_crop_resize_shapes_and_rgb_order(tmp_path: Path) -> None:
    # a red 15-px border (the housing) around a pure-blue gel, BGR
    frame = np.zeros((H, W, 3), dtype=np.uint8)
    frame[:] = (0, 0, 255)
    frame[15:-15, 20:-20] = (255, 0, 0)
    video = write_video(tmp_path / "border.avi", [frame] * 4)
    crop = (15 / H + 0.02, 15 / H + 0.02, 20 / W + 0.02, 20 / W + 0.02)
    with UVCTactile(video, name="pad", size=(48, 64), crop=crop, reference_frames=2) as sensor:
        obs = sensor.read()
        spec = sensor.observation_spec()
    spec.validate(obs.values)
    rgb = obs.values["pad_rgb"]
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert obs.values["pad_diff"].shape == (48, 64, 3) and obs.values["pad_diff"].dtype == np.int16
    # blue in BGR is (255, 0, 0); in RGB it must be the last channel, and no red border is left
    mean = rgb.reshape(-1, 3).mean(axis=0)
    assert mean[2] > 200 and mean[0] < 30 and mean[1] < 30, mean
    assert rgb[..., 0].max() < 80, "the red housing border was not cropped away"

    with UVCTactile(video, name="pad", size=(48, 64), reference_frames=1) as uncropped:
        assert uncropped.read().values["pad_rgb"][..., 0].max() > 200  # the border is there


def test_reference_is_the_mean_of_the_first_frames(tmp_path: Path) -> None:
    levels = [0.4, 0.6, 0.8, 1.0]
    video = write_video(tmp_path / "ramp.avi", [gel(b) for b in levels] + [gel(0.5)] * 2)
    with UVCTactile(video, name="pad", size=(H, W), reference_frames=4) as sensor:
        ref = sensor.reference
        rgb_gel = np.array(GEL_BGR[::-1], dtype=np.float64)
        expected = rgb_gel * np.mean(levels)
        np.testing.assert_allclose(ref.reshape(-1, 3).mean(axis=0), expected, atol=3.0)
        first_only = rgb_gel * levels[0]
        assert np.abs(ref.reshape(-1, 3).mean(axis=0) - first_only).max() > 20
        # the next frame (0.5 brightness) differs from the 0.7 mean by about -0.2 * gel colour
        diff = sensor.read().values["pad_diff"].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(diff, rgb_gel * (0.5 - np.mean(levels)), atol=3.0)


def test_difference_is_near_zero_without_contact_and_large_on_the_blob(
    contact_video: Path,
) -> None:
    with GelSightMini(contact_video, size=(H, W), crop=(0, 0, 0, 0), reference_frames=4) as s:
        for _ in range(4):  # frames 4..7: no contact
            diff = s.read().values["gelsight_diff"].astype(np.float32)
            assert np.abs(diff).mean() < 2.0
        obs = s.read()  # frame 8: the blob
        diff = obs.values["gelsight_diff"].astype(np.int32)
        blob = np.abs(diff[50:70, 70:90]).mean()
        outside = np.abs(diff[:30, :]).mean()
        assert blob > 60 and outside < 2.0, (blob, outside)
        assert set(obs.timestamps) == {"gelsight_rgb", "gelsight_diff"}
        assert abs(obs.timestamps["gelsight_rgb"] - time.time()) < 5.0


def test_rezero_takes_the_contact_as_the_new_reference(contact_video: Path) -> None:
    with Digit(contact_video, size=(H, W), reference_frames=2, loop=False) as sensor:
        assert sensor.config.name == "digit"
        for _ in range(6):  # frames 2..7
            sensor.read()
        before = sensor.reference
        sensor.rezero(2)  # frames 8, 9: blob
        after = sensor.reference
        assert np.abs(after[50:70, 70:90] - before[50:70, 70:90]).mean() > 60
        diff = sensor.read().values["digit_diff"]  # frame 10, blob still there
        assert np.abs(diff.astype(np.float32)).mean() < 2.0


def test_loop_rewinds_and_end_of_file_is_an_error(tmp_path: Path) -> None:
    frames = [gel(0.3), gel(0.3), gel(0.9)]
    video = write_video(tmp_path / "short.avi", frames)
    with UVCTactile(video, name="pad", size=(24, 32), reference_frames=2, loop=True) as looped:
        means = [looped.read().values["pad_rgb"].mean() for _ in range(7)]
    # frames 2, 0, 1, 2, 0, 1, 2: bright, dark, dark, bright, ...
    bright = [m > 100 for m in means]
    assert bright == [True, False, False, True, False, False, True], means

    with UVCTactile(video, name="pad", size=(24, 32), reference_frames=2) as once:
        once.read()
        with pytest.raises(UVCTactileError, match=r"end of video file.*loop=True"):
            once.read()


def test_model_defaults() -> None:
    mini, digit = GelSightMini("/tmp/x.avi"), Digit(0)
    assert mini.config.crop == pytest.approx((1 / 7,) * 4) and mini.config.fps == 25.0
    assert digit.config.capture_size == (320, 240) and digit.config.fps == 60.0
    assert set(mini.observation_spec().names()) == {"gelsight_rgb", "gelsight_diff"}
    assert mini.observation_spec()["gelsight_diff"].kind == "tactile"
    with pytest.raises(DeviceNotConnectedError, match=r"read\(\)"):
        digit.read()


def test_bad_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UVCTactileError, match=r"no_such\.avi.*neither a device index"):
        GelSightMini(str(tmp_path / "no_such.avi")).connect()
    with pytest.raises(UVCTactileError, match=r"/dev/video99 does not exist; available"):
        Digit("/dev/video99").connect()
    with pytest.raises(UVCTactileError, match=r"cannot open device 99"):
        Digit(99).connect()
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    sensor = GelSightMini(text)
    with pytest.raises(UVCTactileError, match=r"cannot open video file"):
        sensor.connect()
    assert not sensor.is_connected


def test_too_short_for_the_reference_fails_on_connect(tmp_path: Path) -> None:
    video = write_video(tmp_path / "two.avi", [gel(), gel()])
    sensor = UVCTactile(video, name="pad", reference_frames=5)
    with pytest.raises(UVCTactileError, match="end of video file after 2 frames"):
        sensor.connect()
    assert not sensor.is_connected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (0, 10)}, "size"),
        ({"crop": (0.5, 0.5, 0.0, 0.0)}, "removes the whole frame"),
        ({"crop": (-0.1, 0.0, 0.0, 0.0)}, "fractions"),
        ({"reference_frames": 0}, "reference_frames"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GelSightMini("/tmp/x.avi", **kwargs)  # type: ignore[arg-type]

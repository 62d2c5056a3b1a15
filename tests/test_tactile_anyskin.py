"""AnySkin driver: the real pyserial reading the emulated board's binary frames on a pty."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from drivers.emulators.anyskin_serial import AnySkinEmulator, encode_frame
from drivers.interfaces import DeviceNotConnectedError
from drivers.tactile.anyskin import (
    AnySkin,
    AnySkinDisconnectedError,
    AnySkinError,
    AnySkinTimeoutError,
    FrameParser,
)

REST = np.array(
    [[120.5, -80.25, 300.0], [10.0, 20.0, -30.0], [0.5, 1.5, 2.5], [-400.0, 50.0, 7.0], [3, 2, 1]],
    dtype=np.float64,
)


def wait_until(cond: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture
def board() -> Iterator[AnySkinEmulator]:
    with AnySkinEmulator(num_magnetometers=5, rate_hz=400.0) as emu:
        emu.set_values(REST)
        yield emu


@pytest.fixture
def skin(board: AnySkinEmulator) -> Iterator[AnySkin]:
    with AnySkin(board.port, timeout_s=0.4) as sensor:
        yield sensor


def settle(skin: AnySkin, frames: int = 5) -> None:
    """Wait until a few frames newer than now have been decoded (the values set have arrived)."""
    start = skin.frames_received
    wait_until(lambda: skin.frames_received >= start + frames)


def test_values_round_trip_through_pyserial(board: AnySkinEmulator, skin: AnySkin) -> None:
    before = time.time()
    settle(skin)
    obs = skin.read()
    np.testing.assert_allclose(obs.values["anyskin"], REST.astype(np.float32))
    assert obs.values["anyskin"].dtype == np.float32
    assert before - 0.5 <= obs.timestamps["anyskin"] <= time.time()
    skin.observation_spec().validate(obs.values)
    np.testing.assert_allclose(skin.temperatures, 25.0)

    pressed = REST + np.array([0.0, 0.0, 150.0])
    board.set_values(pressed)
    settle(skin)
    np.testing.assert_allclose(skin.read().values["anyskin"], pressed.astype(np.float32))
    assert skin.frames_received > 10 and skin.frames_malformed == 0


def test_rezero_subtracts_the_baseline(board: AnySkinEmulator, skin: AnySkin) -> None:
    settle(skin)
    baseline = skin.rezero(n_samples=20)
    np.testing.assert_allclose(baseline, REST, rtol=1e-6)
    np.testing.assert_allclose(skin.read().values["anyskin"], 0.0, atol=1e-4)

    board.set_values(REST + np.array([5.0, -3.0, 40.0]))
    settle(skin)
    delta = skin.read().values["anyskin"]
    np.testing.assert_allclose(delta, np.tile([5.0, -3.0, 40.0], (5, 1)), atol=1e-4)


def test_rezero_averages_the_next_samples(board: AnySkinEmulator, skin: AnySkin) -> None:
    """The baseline is a mean over frames: half the frames at one value, then another."""
    settle(skin)
    board.set_values(np.zeros((5, 3)))
    settle(skin)
    received = skin.frames_received

    def change_midway() -> None:
        wait_until(lambda: skin.frames_received >= received + 30)
        board.set_values(np.full((5, 3), 100.0))

    changer = threading.Thread(target=change_midway)
    changer.start()
    baseline = skin.rezero(n_samples=120)
    changer.join()
    assert np.all(baseline > 5.0) and np.all(baseline < 95.0)  # a mean, not the first/last
    np.testing.assert_allclose(baseline, baseline[0, 0])


def test_corrupt_bytes_are_skipped_counted_and_the_stream_resyncs(
    board: AnySkinEmulator, skin: AnySkin
) -> None:
    settle(skin)
    assert skin.frames_malformed == 0
    board.inject_noise(b"\x13\x37 line noise \x00\xff")
    wait_until(lambda: skin.frames_malformed >= 1)
    board.corrupt_next(3)
    wait_until(lambda: skin.frames_malformed >= 2)
    settle(skin)
    moved = REST * 2.0
    board.set_values(moved)
    settle(skin, 10)
    np.testing.assert_allclose(skin.read().values["anyskin"], moved.astype(np.float32))
    malformed = skin.frames_malformed
    assert 2 <= malformed <= 8
    settle(skin, 20)
    assert skin.frames_malformed == malformed  # back in sync: no further losses


def test_nan_frames_are_rejected(board: AnySkinEmulator, skin: AnySkin) -> None:
    settle(skin)
    bad = REST.copy()
    bad[2, 1] = np.nan
    start = skin.frames_malformed
    board.set_values(bad)
    wait_until(lambda: skin.frames_malformed >= start + 3)
    reading = skin.read().values["anyskin"]
    assert np.all(np.isfinite(reading))
    np.testing.assert_allclose(reading, REST.astype(np.float32))


def test_paused_stream_raises_a_timeout_naming_the_port(
    board: AnySkinEmulator, skin: AnySkin
) -> None:
    settle(skin)
    board.pause()
    time.sleep(0.45)  # older than timeout_s: the last sample is stale
    t0 = time.monotonic()
    with pytest.raises(AnySkinTimeoutError, match=board.port):
        skin.read()
    assert time.monotonic() - t0 >= 0.3  # it waited for a fresh frame before giving up
    board.resume()
    settle(skin)
    np.testing.assert_allclose(skin.read().values["anyskin"], REST.astype(np.float32))


def test_unplug_is_reported(board: AnySkinEmulator, skin: AnySkin) -> None:
    settle(skin)
    board.unplug()
    with pytest.raises(AnySkinDisconnectedError, match=r"stopped streaming"):
        wait_until(lambda: skin.read() is None, timeout=2.0)
    skin.disconnect()  # cleanup after a failure still works
    assert not skin.is_connected


def test_missing_port_lists_the_valid_ones() -> None:
    sensor = AnySkin("/dev/ttyACM_does_not_exist")
    with pytest.raises(AnySkinError, match=r"does not exist.*ttyUSB\*.*ttyACM\*"):
        sensor.connect()
    assert not sensor.is_connected
    with pytest.raises(DeviceNotConnectedError, match=r"read\(\)"):
        sensor.read()


def test_silent_port_times_out_on_connect() -> None:
    with AnySkinEmulator(rate_hz=100.0) as emu:
        emu.pause()
        with pytest.raises(AnySkinTimeoutError, match=f"connect.*{emu.port}"):
            AnySkin(emu.port, timeout_s=0.2).connect()


def test_wrong_magnetometer_count_is_malformed_not_misread(board: AnySkinEmulator) -> None:
    """A 3-magnetometer reader on a 5-magnetometer board never returns mixed-up values."""
    with pytest.raises(AnySkinTimeoutError, match=r"malformed"):
        AnySkin(board.port, num_magnetometers=3, timeout_s=0.2).connect()


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_magnetometers"):
        AnySkin("/dev/null", num_magnetometers=0)
    with pytest.raises(ValueError, match="timeout_s"):
        AnySkin("/dev/null", timeout_s=0)


def test_parser_resyncs_within_one_chunk() -> None:
    """Framing without a port: partial start is dropped silently, garbage counts once."""
    parser = FrameParser(2)
    a = encode_frame(np.ones((2, 3)))
    b = encode_frame(np.full((2, 3), 2.0))
    frames = parser.feed(a[10:] + a + b"junk" + b + a)
    assert [float(f[0, 1]) for f in frames] == [1.0, 1.0]
    assert parser.malformed == 1

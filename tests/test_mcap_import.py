"""``robot-learning dataset import-mcap`` on real MCAP bags written with rosbags' own writer.

The bags carry Image (bgr8), 16UC1 depth, CompressedImage (JPEG), JointState (joints out of the
map's order, plus an extra gripper joint), JointTrajectory, Float64MultiArray, TwistStamped and
String messages at different rates and with sensor stamps that differ from the log times, so
each test can check which sample lands at which tick.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from robot_learning.cli.main import main
from robot_learning.data import EpisodeStore
from robot_learning.data.mcap_align import Stream, align

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # sensor clock origin of every test bag
ARM = [
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
]
JOINT_ID = {name: i + 1 for i, name in enumerate(ARM)} | {"finger_joint": 9}
PUBLISHED_ORDER = [  # not the map's order, and with a joint the map does not ask for
    "wrist_3_joint",
    "elbow_joint",
    "finger_joint",
    "shoulder_pan_joint",
    "wrist_1_joint",
    "shoulder_lift_joint",
    "wrist_2_joint",
]
H, W = 4, 6


def header(stamp_ns: int) -> Any:
    stamp = T["builtin_interfaces/msg/Time"](sec=stamp_ns // NS, nanosec=stamp_ns % NS)
    return T["std_msgs/msg/Header"](stamp=stamp, frame_id="base")


def image(stamp_ns: int, i: int, encoding: str) -> Any:
    if encoding == "16UC1":
        data = np.full((H, W), 1000 + i, dtype="<u2").view(np.uint8).reshape(-1)
        step = W * 2
    else:  # bgr8, uniform (R, G, B) = (16 i, 255 - 16 i, 128): survives the store's JPEG
        data = np.tile(np.array([128, 255 - 16 * i, 16 * i], np.uint8), H * W)
        step = W * 3
    return T["sensor_msgs/msg/Image"](
        header=header(stamp_ns),
        height=H,
        width=W,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=data,
    )


def joint_state(stamp_ns: int, j: int, names: list[str]) -> Any:
    empty = np.zeros(0, np.float64)
    position = np.array([JOINT_ID[n] * 1000 + j for n in names], np.float64)
    return T["sensor_msgs/msg/JointState"](
        header=header(stamp_ns), name=names, position=position, velocity=empty, effort=empty
    )


def trajectory(a: int) -> Any:
    names = list(reversed(ARM))
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
        positions=np.array([a * 10 + JOINT_ID[n] for n in names], np.float64),
        velocities=np.zeros(0),
        accelerations=np.zeros(0),
        effort=np.zeros(0),
        time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000),
    )
    return T["trajectory_msgs/msg/JointTrajectory"](
        header=header(0), joint_names=names, points=[point]
    )


def write_bag(path: Path, messages: list[tuple[str, str, int, Any]]) -> Path:
    """``(topic, msgtype, log_ns, msg)`` -> a rosbag2 directory; returns its .mcap file."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns: dict[str, Any] = {}
        for topic, msgtype, log_ns, msg in sorted(messages, key=lambda m: m[2]):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            writer.write(conns[topic], log_ns, TS.serialize_cdr(msg, msgtype))
    return path / f"{path.name}.mcap"


def cam_stamp(i: int) -> int:
    return T0 + 20_000_000 + round(i * NS / 15)


def make_arm_bag(
    path: Path, instruction: str = "pick up the red cube", rename: dict[str, str] | None = None
) -> Path:
    """1 s: camera+depth 15 Hz (from +20 ms), joints 100 Hz, trajectory 10 Hz (log time)."""
    msgs: list[tuple[str, str, int, Any]] = []
    for i in range(15):
        stamp = cam_stamp(i)
        log = stamp + 3_000_000  # transport latency: log time is not the sensor stamp
        msgs.append(("/cam/color", "sensor_msgs/msg/Image", log, image(stamp, i, "bgr8")))
        msgs.append(("/cam/depth", "sensor_msgs/msg/Image", log, image(stamp, i, "16UC1")))
    for j in range(100):
        stamp = T0 + j * 10_000_000
        msg = joint_state(stamp, j, PUBLISHED_ORDER)
        msgs.append(("/joint_states", "sensor_msgs/msg/JointState", stamp + 1_000_000, msg))
    for a in range(10):
        log = T0 + 5_000_000 + a * 100_000_000
        msgs.append(
            ("/arm/joint_trajectory", "trajectory_msgs/msg/JointTrajectory", log, trajectory(a))
        )
    msgs.append(
        ("/instruction", "std_msgs/msg/String", T0, T["std_msgs/msg/String"](data=instruction))
    )
    rename = rename or {}
    return write_bag(path, [(rename.get(m[0], m[0]), *m[1:]) for m in msgs])


ARM_MAP = {
    "robot": "ur5e",
    "clock": "/joint_states",
    "topics": {
        "/cam/color": {"feature": "scene_rgb", "kind": "rgb"},
        "/cam/depth": {"feature": "scene_depth", "kind": "depth"},
        "/joint_states": {"feature": "joint_pos", "field": "position", "joints": ARM},
        "/arm/joint_trajectory": {"feature": "action", "role": "action", "joints": ARM},
        "/instruction": {"feature": "instruction"},
    },
}


def write_map(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {
        "arm": make_arm_bag(root / "arm"),
        "arm2": make_arm_bag(root / "arm2", instruction="stack the blocks"),
        "map": write_map(root / "arm.yaml", ARM_MAP),
    }


def run(*argv: Any) -> int:
    return main(["dataset", "import-mcap", *map(str, argv)])


def test_zero_order_hold_joint_names_and_stamps(
    bags: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "store"
    assert run(bags["arm"], "--out", out, "--map", bags["map"], "--task", "lift", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    # ticks start when the camera (last to start, +20 ms) has a frame, at the joint rate (100 Hz),
    # and end at the last trajectory (+905 ms): 20, 30, ..., 900 ms -> 89 ticks
    assert summary["fps_hz"] == 100.0 and summary["episodes"] == 1
    assert summary["episode_lengths"] == [89]
    stale = summary["max_staleness_s"]
    assert stale["joint_pos"] == pytest.approx(0.0, abs=1e-9)
    assert 0.060 < stale["scene_rgb"] <= 1 / 15 and stale["action"] == pytest.approx(0.095)

    with EpisodeStore.open(out) as store:
        assert store.n_episodes == 1 and store.robot == "ur5e" and store.fps == 100.0
        assert store.roles["action"] == "action" and store.roles["joint_pos"] == "observation"
        assert store.features["joint_pos"].names == tuple(ARM)
        ep = store.read_episode(0, with_timestamps=True)
        meta = store.episode_meta(0)
    ticks = T0 + 20_000_000 + np.arange(89) * 10_000_000
    cams = np.array([cam_stamp(i) for i in range(15)])
    # brute-force zero-order hold: latest sample stamped at or before each tick
    cam_idx = np.array([max(i for i in range(15) if cams[i] <= t) for t in ticks])
    assert cam_idx[20] == 3  # frame 3 is stamped exactly at tick 20 (0.2 s after the camera start)
    rgb = np.stack([16 * cam_idx, 255 - 16 * cam_idx, np.full(89, 128)], 1)  # bgr8 -> rgb
    assert np.abs(ep["scene_rgb"].astype(int) - rgb[:, None, None, :]).max() <= 3
    assert (ep["scene_depth"] == (1000 + cam_idx)[:, None, None]).all()
    assert ep["scene_depth"].dtype == np.uint16
    np.testing.assert_allclose(ep["scene_rgb.t"], cams[cam_idx] / NS)
    # joints by name: column c is ARM[c] whatever order /joint_states publishes them in
    j = 2 + np.arange(89)
    expected = np.array([JOINT_ID[n] for n in ARM]) * 1000 + j[:, None]
    np.testing.assert_array_equal(ep["joint_pos"], expected.astype(np.float32))
    np.testing.assert_allclose(ep["joint_pos.t"], (T0 + j * 10_000_000) / NS)
    # the trajectory has no header stamp: its log time (+5 ms + 100 ms * a) is used
    a = (15 + 10 * np.arange(89)) // 100
    np.testing.assert_array_equal(ep["action"], a[:, None] * 10 + np.arange(1, 7))
    np.testing.assert_allclose(ep["action.t"], (T0 + 5_000_000 + a * 100_000_000) / NS)
    assert ep["instruction"] == "pick up the red cube"
    assert meta["instruction"] == "pick up the red cube" and meta["task"] == "lift"
    assert meta["bag_episode"] == 0 and meta["source"].endswith("arm.mcap")
    assert meta["start_time"] == pytest.approx(ticks[0] / NS)


def test_resume_appends_skips_and_checks_features(
    bags: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "store"
    assert run(bags["arm"], "--out", out, "--map", bags["map"]) == 0
    assert run(bags["arm"], "--out", out, "--map", bags["map"]) == 2  # exists, no --resume
    assert "--resume" in capsys.readouterr().err
    assert run(bags["arm"], bags["arm2"], "--out", out, "--map", bags["map"], "--resume") == 0
    with EpisodeStore.open(out) as store:
        assert store.n_episodes == 2  # arm.mcap was already there: only arm2 was added
        assert [m["instruction"] for m in store.episodes_meta()] == [
            "pick up the red cube",
            "stack the blocks",
        ]
        assert store.episode_length(1) == 89
    capsys.readouterr()
    # a map that drops the depth camera no longer matches the store: refused, store unchanged
    doc = yaml.safe_load(bags["map"].read_text())
    del doc["topics"]["/cam/depth"]
    other = write_map(tmp_path / "nodepth.yaml", doc)
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file())
    assert run(bags["arm2"], "--out", out, "--map", other, "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "scene_depth" in err
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()) == before


def make_mobile_bag(path: Path) -> Path:
    """3 s with the arm paused in 1..2 s: joints stop, camera/command/twist keep going."""
    msgs: list[tuple[str, str, int, Any]] = []
    for i in range(45):  # 15 Hz JPEG camera, uniform grey level per frame
        stamp = T0 + round(i * NS / 15)
        frame = np.full((8, 8, 3), 5 * i, np.uint8)
        data = np.frombuffer(imagecodecs.jpeg8_encode(frame, level=95), np.uint8)
        msg = T["sensor_msgs/msg/CompressedImage"](header=header(stamp), format="jpeg", data=data)
        msgs.append(("/cam/compressed", "sensor_msgs/msg/CompressedImage", stamp, msg))
    for j in [*range(100), *range(200, 300)]:
        stamp = T0 + j * 10_000_000
        msgs.append(
            (
                "/joint_states",
                "sensor_msgs/msg/JointState",
                stamp,
                joint_state(stamp, j, PUBLISHED_ORDER),
            )
        )
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    vec3 = T["geometry_msgs/msg/Vector3"]
    for a in range(30):
        stamp = T0 + a * 100_000_000
        cmd = T["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.array([a, -a], float))
        msgs.append(("/gripper_cmd", "std_msgs/msg/Float64MultiArray", stamp, cmd))
        twist = T["geometry_msgs/msg/Twist"](
            linear=vec3(x=a, y=0.0, z=0.0), angular=vec3(x=0.0, y=0.0, z=-a)
        )
        msg = T["geometry_msgs/msg/TwistStamped"](header=header(stamp), twist=twist)
        msgs.append(("/ee_twist", "geometry_msgs/msg/TwistStamped", stamp, msg))
    for log, text in [(T0, "task one"), (T0 + 1_500_000_000, "task two")]:
        msgs.append(
            ("/instruction", "std_msgs/msg/String", log, T["std_msgs/msg/String"](data=text))
        )
    return write_bag(path, msgs)


def test_episode_gap_split_fps_and_other_types(tmp_path: Path) -> None:
    bag = make_mobile_bag(tmp_path / "mobile")
    doc = {
        "split_on": "/joint_states",
        "topics": {
            "/cam/compressed": {"feature": "scene_rgb"},
            "/joint_states": {"feature": "joint_pos", "joints": ARM[:2]},
            "/ee_twist": {"feature": "ee_twist"},
            "/gripper_cmd": {"feature": "action", "role": "action", "names": ["l", "r"]},
            "/instruction": {"feature": "instruction", "kind": "language"},
        },
    }
    out = tmp_path / "store"
    argv = [bag, "--out", out, "--map", write_map(tmp_path / "m.yaml", doc), "--fps", 20]
    assert run(*argv, "--episode-gap", 0.5) == 0
    with EpisodeStore.open(out) as store:
        # windows 0..0.99 s and 2.0..2.99 s; each ends at the last command in it (0.9 / 2.9 s)
        assert store.n_episodes == 2 and store.fps == 20.0
        assert [store.episode_length(i) for i in range(2)] == [19, 19]
        assert [m["instruction"] for m in store.episodes_meta()] == ["task one", "task two"]
        assert (store.features["ee_twist"].names or ())[-1] == "angular.z"
        second = store.read_episode(1, with_timestamps=True)
    k = np.arange(19)
    tick_ms = 2000 + 50 * k
    frame = (tick_ms * 15) // 1000  # camera frame held at each tick
    assert np.abs(second["scene_rgb"].astype(int) - (5 * frame)[:, None, None, None]).max() <= 3
    a = tick_ms // 100
    np.testing.assert_array_equal(second["action"], np.stack([a, -a], 1))
    np.testing.assert_array_equal(second["ee_twist"][:, [0, 5]], np.stack([a, -a], 1))
    np.testing.assert_array_equal(second["joint_pos"][:, 1], 2000 + tick_ms // 10)
    np.testing.assert_allclose(second["joint_pos.t"], T0 / NS + tick_ms / 1000)
    # without --episode-gap the bag is one episode, held across the pause
    assert run(*argv[:2], tmp_path / "one", *argv[3:]) == 0
    with EpisodeStore.open(tmp_path / "one") as store:
        assert store.n_episodes == 1 and store.episode_length(0) == 59


def test_align_drops_ticks_before_every_stream_started() -> None:
    fast = Stream.from_arrival([0, 10, 20, 30, 40, 50])
    late = Stream.from_arrival([25, 45, 35])  # arrives out of stamp order
    timeline = align({"fast": fast, "late": late}, fps=1e8)  # 10 ns ticks
    assert timeline.ticks.tolist() == [25, 35, 45]
    assert late.order[timeline.index["late"]].tolist() == [0, 2, 1]
    assert timeline.index["fast"].tolist() == [2, 3, 4]
    assert timeline.staleness_s["fast"] == pytest.approx(5e-9)


def bad_bag(tmp_path: Path) -> Path:
    flag = T["std_msgs/msg/Bool"](data=True)
    return write_bag(tmp_path / "flag", [("/flag", "std_msgs/msg/Bool", T0, flag)])


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing_bag", "does not exist"),
        ("unknown_topic", "its topics: /arm/joint_trajectory"),
        ("unsupported_type", "std_msgs/msg/Bool is not supported; supported types:"),
        ("missing_joint", "['gripper_joint'] from the map are not in the message"),
        ("no_rate", "pass --fps"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    case: str,
    needle: str,
    bags: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = yaml.safe_load(bags["map"].read_text())
    bag = bags["arm"]
    if case == "missing_bag":
        bag = tmp_path / "nope.mcap"
    elif case == "unknown_topic":
        doc["topics"]["/camera/typo"] = {"feature": "wrist_rgb"}
    elif case == "unsupported_type":
        bag, doc = bad_bag(tmp_path), {"fps": 10, "topics": {"/flag": {"feature": "flag"}}}
    elif case == "missing_joint":
        doc["topics"]["/joint_states"]["joints"] = [*ARM, "gripper_joint"]
    elif case == "no_rate":
        del doc["clock"]
    out = tmp_path / "store"
    assert run(bag, "--out", out, "--map", write_map(tmp_path / "bad.yaml", doc)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robot-learning: error:") and "\n" not in err
    assert needle in err
    assert not out.exists()


def test_image_converters_handle_padding_byte_order_and_compressed_depth() -> None:
    from robot_learning.data.mcap_map import TopicEntry
    from robot_learning.data.mcap_messages import make_converter

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = np.zeros((3, 6), np.uint8)  # step 6 > width 4: two padding bytes per row
    padded[:, :4] = grey
    msg = image(T0, 0, "bgr8")
    msg.encoding, msg.height, msg.width, msg.step, msg.data = "mono8", 3, 4, 6, padded.ravel()
    conv = make_converter(TopicEntry("/grey", "grey"), "sensor_msgs/msg/Image")
    assert conv.check(msg) is None and conv.kind == "rgb" and conv.shape == (3, 4, 3)
    np.testing.assert_array_equal(conv.value(msg), np.repeat(grey[..., None], 3, axis=-1))

    depth = np.array([[1, 256], [4095, 65535]], np.uint16)
    msg = image(T0, 0, "16UC1")
    msg.height, msg.width, msg.step, msg.is_bigendian = 2, 2, 4, 1
    msg.data = depth.astype(">u2").view(np.uint8).ravel()
    conv = make_converter(TopicEntry("/depth", "depth"), "sensor_msgs/msg/Image")
    conv.check(msg)
    assert conv.kind == "depth"
    np.testing.assert_array_equal(conv.value(msg), depth)

    # compressed_depth_image_transport: a 12-byte config header, then a 16-bit PNG
    payload = b"\0" * 12 + bytes(imagecodecs.png_encode(depth))
    msg = T["sensor_msgs/msg/CompressedImage"](
        header=header(T0),
        format="16UC1; compressedDepth png",
        data=np.frombuffer(payload, np.uint8),
    )
    conv = make_converter(TopicEntry("/cd", "cd"), "sensor_msgs/msg/CompressedImage")
    conv.check(msg)
    assert conv.kind == "depth" and conv.shape == (2, 2)
    np.testing.assert_array_equal(conv.value(msg), depth)


def test_example_map_imports_a_bag_with_its_topics(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "policies" / "mcap_maps" / "ur5e_realsense.yaml"
    rename = {
        "/cam/color": "/camera/camera/color/image_raw",
        "/cam/depth": "/camera/camera/aligned_depth_to_color/image_raw",
        "/arm/joint_trajectory": "/scaled_joint_trajectory_controller/joint_trajectory",
    }
    bag = make_arm_bag(tmp_path / "ur5e", rename=rename)
    assert run(bag, "--out", tmp_path / "store", "--map", example) == 0
    with EpisodeStore.open(tmp_path / "store") as store:
        # the clock is the 15 Hz camera: ticks fall on its frames, from +20 ms to +905 ms
        assert store.fps == 15.0 and store.robot == "ur5e" and store.episode_length(0) == 14
        assert store.episode_meta(0)["task"] == "pick and place"
        assert store.episode_meta(0)["max_staleness_s"]["scene_rgb"] == 0.0
        ep = store.read_episode(0)
    assert np.abs(ep["scene_rgb"][:, 0, 0, 0].astype(int) - 16 * np.arange(14)).max() <= 3
    assert set(ep) == {"scene_rgb", "scene_depth", "joint_pos", "action", "instruction"}

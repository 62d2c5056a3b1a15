"""The Fast DDS profile every node loads: what it configures and when it stays out of the way."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ros_support import PACKAGE_DIR

from robot_learning_ros.dds_profile import PROFILE, PROFILE_ENV, use_robot_learning_transports

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def test_profile_enlarges_shared_memory_and_keeps_udp() -> None:
    assert PROFILE.parent == PACKAGE_DIR / "robot_learning_ros" and PROFILE.is_file()
    root = ET.parse(PROFILE).getroot()
    descriptors = {
        d.findtext("f:transport_id", namespaces=NS): d
        for d in root.iterfind(".//f:transport_descriptor", NS)
    }
    kinds = {d.findtext("f:type", namespaces=NS) for d in descriptors.values()}
    assert kinds == {"SHM", "UDPv4"}
    shm = next(d for d in descriptors.values() if d.findtext("f:type", namespaces=NS) == "SHM")
    # two 1280x720 RGB frames fit in one segment
    assert int(shm.findtext("f:segment_size", namespaces=NS) or 0) >= 2 * 1280 * 720 * 3
    participant = root.find(".//f:participant", NS)
    assert participant is not None and participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind(".//f:userTransports/f:transport_id", NS)]
    assert sorted(used) == sorted(descriptors)
    assert participant.findtext(".//f:useBuiltinTransports", namespaces=NS) == "false"


def test_profile_is_set_unless_the_user_chose_transports() -> None:
    env: dict[str, str] = {}
    assert use_robot_learning_transports(env) == {PROFILE_ENV: str(PROFILE)}
    assert env == {PROFILE_ENV: str(PROFILE)}
    for name, value in [
        ("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        ("FASTDDS_DEFAULT_PROFILES_FILE", "/etc/lab/fastdds.xml"),
        ("FASTRTPS_DEFAULT_PROFILES_FILE", "/etc/lab/fastrtps.xml"),
    ]:
        env = {name: value}
        assert use_robot_learning_transports(env) == {name: value}
        assert env == {name: value}, f"{name} chosen by the user must win"


@pytest.mark.parametrize("empty", ["FASTDDS_BUILTIN_TRANSPORTS", PROFILE_ENV])
def test_an_empty_variable_is_not_a_choice(empty: str) -> None:
    env = {empty: ""}
    use_robot_learning_transports(env)
    assert env[PROFILE_ENV] == str(PROFILE)

import re

import numpy as np
import pytest

from robot_learning.registry import Registry, UnknownNameError
from robot_learning.specs import FeatureSpec, SpecDict, SpecError


def make_specs() -> SpecDict:
    return SpecDict(
        {
            "joint_pos": FeatureSpec((6,), "float32", "lowdim", low=-3.0, high=3.0),
            "scene_rgb": FeatureSpec((8, 8, 3), "uint8", "rgb"),
            "instruction": FeatureSpec((), "str", "language"),
        }
    )


def valid_values() -> dict:
    return {
        "joint_pos": np.zeros(6, np.float32),
        "scene_rgb": np.zeros((8, 8, 3), np.uint8),
        "instruction": "pick up the red cube",
    }


def test_valid_values_pass() -> None:
    make_specs().validate(valid_values())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("joint_pos", np.zeros(5), "shape (5,)"),
        ("joint_pos", np.array([np.nan] * 6), "NaN or Inf"),
        ("joint_pos", np.array([np.inf] * 6), "NaN or Inf"),
        ("scene_rgb", np.zeros((8, 8)), "shape (8, 8)"),
        ("instruction", 3, "must be a str"),
    ],
)
def test_bad_values_name_the_feature(name: str, value: object, message: str) -> None:
    values = valid_values()
    values[name] = value
    with pytest.raises(SpecError, match=re.escape(message)) as err:
        make_specs().validate(values)
    assert repr(name) in str(err.value)


def test_missing_and_extra_features() -> None:
    values = valid_values()
    del values["scene_rgb"]
    with pytest.raises(SpecError, match="missing features \\['scene_rgb'\\]"):
        make_specs().validate(values)
    values = valid_values()
    values["wrist_rgb"] = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(SpecError, match="unknown features \\['wrist_rgb'\\]"):
        make_specs().validate(values)


def test_json_round_trip_and_compatibility() -> None:
    specs = make_specs()
    again = SpecDict.from_json(specs.to_json())
    assert again.to_json() == specs.to_json()
    specs.check_compatible(again)
    other = SpecDict({**specs.features, "joint_pos": FeatureSpec((7,), "float32", "lowdim")})
    with pytest.raises(SpecError, match="'joint_pos' is \\(7,\\)"):
        specs.check_compatible(other)


def test_invalid_spec_definitions() -> None:
    with pytest.raises(SpecError, match="unknown feature kind"):
        FeatureSpec((3,), "float32", "pointcloud")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="rgb features are"):
        FeatureSpec((8, 8), "uint8", "rgb")
    with pytest.raises(SpecError, match="2 names given"):
        FeatureSpec((3,), "float32", "lowdim", names=("a", "b"))
    with pytest.raises(TypeError):
        FeatureSpec((3,), "notadtype", "lowdim")


def test_bounds_broadcast() -> None:
    low, high = FeatureSpec((3,), "float32", "lowdim", low=(-1, -2, -3), high=1.0).bounds()
    assert low.tolist() == [-1, -2, -3] and high.tolist() == [1, 1, 1]
    low, high = FeatureSpec((2,), "float32", "lowdim").bounds()
    assert np.isinf(low).all() and np.isinf(high).all()


def test_registry_unknown_name_lists_valid_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a", lambda: 1)
    reg.register("b", "math:floor")
    assert reg.make("a") == 1
    assert reg.make("b", 2.7) == 2  # lazy entry imported on first use
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid widget names: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: 2)

"""Every launch file agrees with its bringup config, and every node it names exists.

``ros2 launch`` cannot be installed here, so the launch files are read as Python syntax trees:
``Node(...)``, ``ExecuteProcess(...)`` and ``DeclareLaunchArgument(...)`` calls are compared with
the bringup YAML that ``robot-learning bringup`` starts. Parameter files are checked against the
parameters each node declares, so a misspelt key fails here rather than at start-up on a robot.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ros_support import BRINGUP_DIR, PACKAGE_DIR

from robot_learning.bringup.config import console_scripts, load_config

pytest.importorskip("rclpy")

CONFIGS = sorted(BRINGUP_DIR.glob("*.yaml"))


def _value(node: ast.AST, variables: dict[str, Any]) -> Any:
    """A launch-file expression as comparable data; substitutions become ``${name}``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_value(e, variables) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _value(k, variables): _value(v, variables)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "LaunchConfiguration":
        return "${" + str(_value(node.args[0], variables)) + "}"
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise AssertionError(f"unknown name {node.id} in a launch expression")
        return variables[node.id]
    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "join":
        # os.path.join(get_package_share_directory(PKG), "config", FILE) -> "config/FILE"
        return "/".join(str(_value(a, variables)) for a in node.args[1:])
    raise AssertionError(f"unsupported launch expression: {ast.dump(node)}")


def _kwargs(call: ast.Call, variables: dict[str, Any]) -> dict[str, Any]:
    return {k.arg: _value(k.value, variables) for k in call.keywords if k.arg}


def parse_launch(path: Path) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    """``(arguments, processes in order, variables)`` of a launch file."""
    tree = ast.parse(path.read_text(), str(path))
    variables: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            variables[node.targets[0].id] = _value(node.value, variables)
    arguments: dict[str, str] = {}
    processes: list[dict[str, Any]] = []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
        kind = call.func.id  # type: ignore[union-attr]
        if kind == "DeclareLaunchArgument":
            name = str(_value(call.args[0], variables))
            arguments[name] = str(_kwargs(call, variables)["default_value"])
        elif kind in ("Node", "ExecuteProcess"):
            processes.append({"kind": kind, **_kwargs(call, variables)})
    return arguments, processes, variables


def _flatten(value: Any) -> str:
    return "".join(str(v) for v in value) if isinstance(value, list) else str(value)


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_launch_file_matches_bringup_config(config_path: Path) -> None:
    raw = yaml.safe_load(config_path.read_text())
    config = load_config(config_path)
    assert config.launch_file, f"{config_path.name} names no launch file"
    arguments, launched, _ = parse_launch(PACKAGE_DIR / config.launch_file)
    assert arguments == config.arguments, "launch arguments and defaults match the bringup config"
    assert [p["name"] for p in launched] == [p["name"] for p in raw["processes"]]
    for spec, proc in zip(raw["processes"], launched, strict=True):
        if proc["kind"] == "ExecuteProcess":
            assert "command" in spec, f"{spec['name']}: the launch file runs a program"
            assert [_flatten(c) for c in proc["cmd"]] == spec["command"]
            continue
        assert (proc["package"], proc["executable"]) == (spec["package"], spec["executable"])
        files = [e for e in proc["parameters"] if isinstance(e, str)]
        overrides: dict[str, str] = {}
        for entry in proc["parameters"]:
            if isinstance(entry, dict):
                overrides.update({k: _flatten(v) for k, v in entry.items()})
        assert files == spec.get("parameters", [])
        assert overrides == {k: str(v) for k, v in (spec.get("ros_parameters") or {}).items()}


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_bringup_nodes_exist_and_parameter_files_use_declared_names(config_path: Path) -> None:
    config = load_config(config_path)
    scripts = console_scripts(PACKAGE_DIR)
    for spec in config.processes:
        if not spec.is_node:
            continue
        assert spec.executable in scripts, f"{spec.executable} is not an entry point of setup.py"
        module_name, _, function = scripts[str(spec.executable)].partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function))
        declared = declared_parameters(Path(str(module.__file__)))
        for params_file in spec.parameters:
            params = yaml.safe_load((PACKAGE_DIR / params_file).read_text())
            assert spec.name in params, f"{params_file} has no section for node {spec.name!r}"
            keys = set(params[spec.name]["ros__parameters"])
            unknown = keys - declared
            assert not unknown, f"{params_file}: {spec.name} does not declare {sorted(unknown)}"
        assert set(spec.ros_parameters) <= declared


def declared_parameters(module_file: Path) -> set[str]:
    """Keyword names passed to ``declare(self, ...)`` in a node module."""
    tree = ast.parse(module_file.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "declare":
            names.update(k.arg for k in node.keywords if k.arg)
    assert names, f"{module_file.name} declares no parameters through declare()"
    return names


def test_every_entry_point_module_imports() -> None:
    for executable, target in console_scripts(PACKAGE_DIR).items():
        module_name, _, function = target.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function)), executable

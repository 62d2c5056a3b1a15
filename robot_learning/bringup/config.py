"""Bringup configs: the processes a ROS 2 launch file starts, as YAML that needs no ``ros2 launch``.

A config names its launch file and lists processes in start order. A ROS 2 node is
``{name, package, executable, parameters: [files relative to the package], ros_parameters: {..}}``;
any other program is ``{name, command: [...], ready: URL}``. ``${arg}`` in strings is replaced by
the config's ``arguments`` (overridable with ``--arg key=value``), exactly as the launch file's
``LaunchConfiguration`` substitutions are. ``tests/test_ros_launch_configs.py`` checks that every
launch file and its bringup config agree.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SUBST = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BringupConfigError(ValueError):
    """A bringup config that cannot be started; the text names the field and the file."""


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start: a ROS 2 node (``package`` + ``executable``) or a ``command``."""

    name: str
    package: str | None = None
    executable: str | None = None
    parameters: tuple[str, ...] = ()
    ros_parameters: dict[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    ready: str | None = None

    @property
    def is_node(self) -> bool:
        return self.package is not None


@dataclass(frozen=True)
class BringupConfig:
    path: Path
    description: str
    launch_file: str | None
    arguments: dict[str, str]
    processes: tuple[ProcessSpec, ...]
    workspace: Path

    def package_dir(self, package: str) -> Path:
        path = self.workspace / package
        if not (path / "package.xml").is_file():
            known = sorted(p.parent.name for p in self.workspace.glob("*/package.xml"))
            raise BringupConfigError(
                f"{self.path}: no ROS 2 package {package!r} in {self.workspace}; "
                f"packages there: {', '.join(known) or 'none'}"
            )
        return path


def substitute(value: Any, arguments: dict[str, str], where: str) -> Any:
    """Replace ``${name}`` in strings (recursively in lists and dicts)."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in arguments:
                raise BringupConfigError(
                    f"{where}: unknown argument ${{{name}}}; arguments: {', '.join(arguments)}"
                )
            return arguments[name]

        return _SUBST.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, arguments, where) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, arguments, where) for k, v in value.items()}
    return value


def _process(raw: Any, index: int, arguments: dict[str, str], path: Path) -> ProcessSpec:
    where = f"{path}: processes[{index}]"
    if not isinstance(raw, dict) or "name" not in raw:
        raise BringupConfigError(f"{where}: expected a mapping with a 'name'")
    allowed = {"name", "package", "executable", "parameters", "ros_parameters", "command", "ready"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise BringupConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}"
        )
    raw = substitute(raw, arguments, where)
    is_node = "package" in raw or "executable" in raw
    if is_node == ("command" in raw):
        raise BringupConfigError(f"{where}: give either package + executable or command")
    if is_node and not (raw.get("package") and raw.get("executable")):
        raise BringupConfigError(f"{where}: a ROS 2 node needs both package and executable")
    return ProcessSpec(
        name=str(raw["name"]),
        package=raw.get("package"),
        executable=raw.get("executable"),
        parameters=tuple(str(p) for p in raw.get("parameters", ())),
        ros_parameters=dict(raw.get("ros_parameters", {})),
        command=tuple(str(c) for c in raw.get("command", ())),
        ready=raw.get("ready"),
    )


def load_config(path: str | Path, overrides: dict[str, str] | None = None) -> BringupConfig:
    """Read and validate a bringup YAML; ``overrides`` replace its ``arguments``."""
    path = Path(path)
    if not path.is_file():
        raise BringupConfigError(f"bringup config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BringupConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("processes"), list):
        raise BringupConfigError(f"{path}: expected a mapping with a 'processes' list")
    arguments = {str(k): str(v) for k, v in (raw.get("arguments") or {}).items()}
    for key in overrides or {}:
        if key not in arguments:
            raise BringupConfigError(
                f"unknown --arg {key!r} for {path.name}; arguments: {', '.join(arguments)}"
            )
    arguments.update(overrides or {})
    processes = tuple(_process(p, i, arguments, path) for i, p in enumerate(raw["processes"]))
    names = [p.name for p in processes]
    if len(set(names)) != len(names):
        raise BringupConfigError(f"{path}: process names must be unique, got {names}")
    package_root = path.resolve().parent.parent
    in_package = path.parent.name == "bringup" and (package_root / "package.xml").is_file()
    return BringupConfig(
        path=path,
        description=str(raw.get("description", "")),
        launch_file=raw.get("launch_file"),
        arguments=arguments,
        processes=processes,
        workspace=package_root.parent if in_package else default_workspace(),
    )


def default_workspace() -> Path:
    """This checkout's ``ros2_ws/src``, where the project's ROS 2 packages live."""
    return Path(__file__).resolve().parents[2] / "ros2_ws" / "src"


def console_scripts(package_dir: Path) -> dict[str, str]:
    """``executable -> "module:function"`` from an ament_python package's ``setup.py``."""
    setup = package_dir / "setup.py"
    tree = ast.parse(setup.read_text(), str(setup))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entry_points = ast.literal_eval(node.value)
            scripts: dict[str, str] = {}
            for line in entry_points.get("console_scripts", []):
                name, _, target = line.partition("=")
                scripts[name.strip()] = target.strip()
            return scripts
    raise BringupConfigError(f"{setup}: no entry_points in setup()")

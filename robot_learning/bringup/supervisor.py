"""Start a bringup config's processes in order and keep them as one unit.

What ``ros2 launch`` does for our launch files, as plain subprocesses: ROS 2 nodes run their
package's console-script entry point with ``--ros-args -r __node:=NAME --params-file FILE``;
other programs run as given. Output is prefixed with the process name. A process with ``ready``
(an HTTP URL) must answer 200 before the next one starts. When any process exits, or on Ctrl-C /
SIGTERM, the rest get SIGINT, then SIGTERM, then SIGKILL, so no node is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from robot_learning.bringup.config import (
    BringupConfig,
    BringupConfigError,
    ProcessSpec,
    console_scripts,
)

LOG = logging.getLogger(__name__)
STOP_GRACE_S = (5.0, 5.0)  # SIGINT -> SIGTERM, SIGTERM -> SIGKILL


def _ros_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_ros_value(v) for v in value) + "]"
    return str(value)


def process_command(config: BringupConfig, spec: ProcessSpec) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment that start ``spec``."""
    if not spec.is_node:
        argv = list(spec.command)
        local = Path(sys.executable).parent / argv[0]
        if os.sep not in argv[0] and local.is_file():
            argv[0] = str(local)  # this environment's console scripts first
        elif shutil.which(argv[0]) is None:
            raise BringupConfigError(f"{spec.name}: program {argv[0]!r} not found")
        return argv, {}
    assert spec.package is not None and spec.executable is not None
    package_dir = config.package_dir(spec.package)
    scripts = console_scripts(package_dir)
    if spec.executable not in scripts:
        raise BringupConfigError(
            f"{spec.name}: package {spec.package} has no executable {spec.executable!r}; "
            f"it has {', '.join(sorted(scripts))}"
        )
    module, _, function = scripts[spec.executable].partition(":")
    argv = [sys.executable, "-c", f"from {module} import {function}; {function}()"]
    argv += ["--ros-args", "-r", f"__node:={spec.name}"]
    for params in spec.parameters:
        path = package_dir / params
        if not path.is_file():
            raise BringupConfigError(f"{spec.name}: parameter file {path} does not exist")
        argv += ["--params-file", str(path)]
    for key, value in spec.ros_parameters.items():
        argv += ["-p", f"{key}:={_ros_value(value)}"]
    pythonpath = os.pathsep.join(
        p for p in (str(package_dir), os.environ.get("PYTHONPATH", "")) if p
    )
    # each node sets its Fast DDS transports itself (robot_learning_ros.dds_profile)
    return argv, {"PYTHONPATH": pythonpath}


@dataclass
class Running:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


def _pump(name: str, stream: IO[bytes], sink: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        sink(f"[{name}] {raw.decode(errors='replace').rstrip()}")
    stream.close()


def _print_line(line: str) -> None:
    print(line, flush=True)


class Supervisor:
    """Owns the running processes of one bringup config."""

    def __init__(
        self,
        config: BringupConfig,
        *,
        sink: Callable[[str], None] = _print_line,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.config = config
        self.sink = sink
        self.ready_timeout_s = ready_timeout_s
        self.running: list[Running] = []
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def start(self) -> None:
        """Start every process in order, waiting for ``ready`` URLs; on failure stop the rest."""
        try:
            for spec in self.config.processes:
                if self._stop.is_set():
                    return
                argv, extra_env = process_command(self.config, spec)
                env = {**os.environ, **extra_env}

                proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us; we stop children in order
                )
                LOG.info("started %s (pid %d): %s", spec.name, proc.pid, " ".join(argv))
                assert proc.stdout is not None
                pump = threading.Thread(
                    target=_pump, args=(spec.name, proc.stdout, self.sink), daemon=True
                )
                pump.start()
                self.running.append(Running(spec, proc, pump))
                if spec.ready:
                    self._wait_ready(spec, proc)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, spec: ProcessSpec, proc: subprocess.Popen[bytes]) -> None:
        assert spec.ready is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if proc.poll() is not None:
                raise RuntimeError(f"{spec.name} exited with code {proc.returncode} while starting")
            try:
                with urllib.request.urlopen(spec.ready, timeout=1.0) as reply:
                    if reply.status == 200:
                        LOG.info("%s ready (%s)", spec.name, spec.ready)
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        if not self._stop.is_set():
            raise RuntimeError(f"{spec.name} not ready at {spec.ready} in {self.ready_timeout_s} s")

    def wait(self) -> int:
        """Block until a process exits or a stop is requested; stop the rest; return a status.

        0 when stopped on request with every process healthy, else the first dead one's code
        (1 if it died from a signal or exited 0 unexpectedly).
        """
        first_dead: Running | None = None
        while not self._stop.is_set():
            for item in self.running:
                if item.proc.poll() is not None:
                    first_dead = item
                    break
            if first_dead is not None:
                break
            time.sleep(0.1)
        if first_dead is not None:
            code = first_dead.proc.returncode
            LOG.error("%s exited with code %s; stopping the rest", first_dead.spec.name, code)
        self.stop()
        if first_dead is None:
            return 0
        code = first_dead.proc.returncode
        return code if code and code > 0 else 1

    def stop(self) -> None:
        """SIGINT every live process (last started first), then SIGTERM, then SIGKILL."""
        live = [r for r in reversed(self.running) if r.proc.poll() is None]
        for sig, grace in ((signal.SIGINT, STOP_GRACE_S[0]), (signal.SIGTERM, STOP_GRACE_S[1])):
            for item in live:
                if item.proc.poll() is None:
                    _signal_group(item.proc, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(r.proc.poll() is None for r in live):
                time.sleep(0.05)
            live = [r for r in live if r.proc.poll() is None]
            if not live:
                break
        for item in live:
            LOG.warning("%s ignored SIGINT and SIGTERM; killing it", item.spec.name)
            _signal_group(item.proc, signal.SIGKILL)
            item.proc.wait()
        for item in self.running:
            item.pump.join(timeout=2.0)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)

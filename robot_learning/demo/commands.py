"""Running one ``robot-learning`` subcommand as a child process, as a user would type it.

Why a child process: each stage is exactly a command from the docs (the demo shows how to use
the stack, not a private code path), its progress goes straight to the terminal, and Ctrl-C
reaches it once, as SIGINT, so it stops the way it stops for a user: ``collect`` keeps the
saved episodes, ``train`` keeps its last checkpoint for ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from typing import Any

STOP_TIMEOUT_S = 60.0


class DemoError(RuntimeError):
    """A stage failed; the message says which command and where to look."""


def run_cli(args: list[str], what: str) -> dict[str, Any]:
    """``robot-learning ARGS --json``: stderr (progress) to this terminal, return the JSON."""
    cmd = [sys.executable, "-m", "robot_learning.cli", *args, "--json"]
    # its own session: a Ctrl-C at the terminal reaches this process only, which forwards one
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if proc.returncode != 0:
        shown = " ".join(["robot-learning", *args])
        raise DemoError(f"{what} failed (exit {proc.returncode}): {shown}; see the lines above")
    lines = out.strip().splitlines()
    if not lines:
        raise DemoError(f"{what} printed no summary")
    result: dict[str, Any] = json.loads(lines[-1])
    return result

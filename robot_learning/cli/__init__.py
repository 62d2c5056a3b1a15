"""The ``robot-learning`` command: one module per subcommand, wired together in :mod:`.main`.

A subcommand module defines ``add_parser(subparsers)`` that registers its parser and sets
``handler=<function(args) -> int>``. This package holds the few helpers every subcommand shares
(one-line usage errors, JSON output, progress), and imports nothing heavy so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

PROGRESS = logging.getLogger("robot_learning.cli")


class CLIError(Exception):
    """A user-facing error: printed as one line on stderr, no traceback; exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def signals_interrupt(*signums: int) -> Iterator[None]:
    """While active, ``signums`` (default: SIGTERM) raise ``KeyboardInterrupt``: the Ctrl-C path.

    Commands use it so that ``kill`` stops them as cleanly as Ctrl-C (checkpoints kept, child
    processes stopped, exit 130). Outside the main thread signals cannot be set: left alone.
    """

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = {sig: signal.signal(sig, handler) for sig in signums or (signal.SIGTERM,)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: ... (see --help)``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def print_json(obj: dict[str, Any]) -> None:
    """One JSON object on stdout; non-finite floats become null so any parser accepts it."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    sys.stdout.write(json.dumps(clean(obj)) + "\n")
    sys.stdout.flush()


def key_values(items: list[str], option: str, example: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; an item without ``KEY=`` is a CLIError.

    ``option`` (e.g. ``--arg``) and ``example`` (e.g. ``speed=0.3``) go into the error message.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"{option} {item!r}: expected KEY=VALUE, e.g. {example}")
        out[key.strip()] = value
    return out


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` -> ``(H, W)``; used as an argparse ``type`` so bad sizes are usage errors."""
    parts = text.lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        height, width = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 96x96, got {text!r}") from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"height and width must be positive, got {text!r}")
    return height, width


def _parse_float(text: str, minimum: float, inclusive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    too_small = value < minimum if inclusive else value <= minimum
    if not math.isfinite(value) or too_small:
        bound = ">=" if inclusive else ">"
        raise argparse.ArgumentTypeError(f"expected a number {bound} {minimum:g}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return _parse_float(text, 0.0, inclusive=False)


def non_negative_float(text: str) -> float:
    return _parse_float(text, 0.0, inclusive=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


__all__ = [
    "PROGRESS",
    "ArgumentParser",
    "CLIError",
    "non_negative_float",
    "parse_size",
    "positive_float",
    "positive_int",
    "print_json",
]

"""``robot-learning`` entry point: global options, subcommand dispatch, error policy.

Why one dispatcher: every subcommand gets the same ``--help``, logging flags and error handling
(user errors -> one line on stderr and exit status 2, never a traceback). A subcommand is a module
``robot_learning.cli.<name>`` with ``add_parser(subparsers)``; list it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from robot_learning import __version__
from robot_learning.cli import ArgumentParser, CLIError
from robot_learning.registry import UnknownNameError

PROG = "robot-learning"
COMMANDS: tuple[str, ...] = (
    "sim",
    "collect",
    "dataset",
    "train",
    "eval",
    "rl",
    "value",
    "serve",
    "bringup",
    "demo",
)
LOG = logging.getLogger(__name__)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Robot learning stack: simulation, data collection, training, serving.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"robot_learning.cli.{name}").add_parser(subparsers)
    _add_verbosity(parser, top=True)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, top: bool) -> None:
    """``-v``/``-q`` on every (sub)command, so they work before or after the subcommand name."""
    default = False if top else argparse.SUPPRESS  # a subcommand must not undo a top-level -q
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="debug logging"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="warnings and errors only (no progress)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _add_verbosity(sub, top=False)


def configure_logging(verbose: bool = False, quiet: bool = False) -> Callable[[], None]:
    """Diagnostics and progress go to stderr; third-party INFO chatter stays hidden.

    Returns a function that undoes the changes, so ``main()`` can be called in-process (tests,
    notebooks) without leaving logging reconfigured.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    added: logging.Handler | None = None
    if not root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(added)
    loggers = [logging.getLogger(name) for name in ("robot_learning", "drivers")]
    previous = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)

    def restore() -> None:
        for lg, old in zip(loggers, previous):
            lg.setLevel(old)
        if added is not None:
            root.removeHandler(added)

    return restore


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    restore_logging = configure_logging(args.verbose, args.quiet)
    try:
        return int(args.handler(args) or 0)
    except (CLIError, UnknownNameError) as exc:
        code = exc.exit_code if isinstance(exc, CLIError) else 2
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        restore_logging()


if __name__ == "__main__":
    sys.exit(main())

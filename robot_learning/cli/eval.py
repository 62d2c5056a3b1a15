"""``robot-learning eval``: success rate (with a 95 % CI), episode length and latency in the sim.

Why a command and not a script: training runs, CI jobs and sim-to-real comparisons all need the
same figures measured the same way (seeded episodes, batched inference, Wilson interval), and
``--json`` gives them to other tools without scraping. This evaluates in the MuJoCo sim only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robot_learning.cli import PROGRESS, CLIError, key_values, positive_int, print_json

if TYPE_CHECKING:
    from robot_learning.eval.result import EpisodeRecord, EvalResult
    from robot_learning.policies.base import Policy

LOG = logging.getLogger(__name__)
CHECKPOINT_CONFIG = "config.json"


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def check_policy_dir(text: str) -> Path:
    """The checkpoint directory, or a one-line error saying what is wrong with it."""
    path = Path(text)
    if not path.exists():
        raise CLIError(f"--policy {text}: no such directory")
    if not path.is_dir():
        raise CLIError(f"--policy {text}: not a directory (expected a checkpoint directory)")
    if not (path / CHECKPOINT_CONFIG).is_file():
        raise CLIError(
            f"--policy {text}: not a policy checkpoint (no {CHECKPOINT_CONFIG}); "
            "checkpoints are written by 'robot-learning train'"
        )
    return path


def recipe_execution(policy_dir: Path) -> str:
    """The execution mode the checkpoint's recipe recommends (``rtc`` when it names none)."""
    from robot_learning.policies.checkpoint import CheckpointError, read_config

    try:
        recipe = read_config(policy_dir).get("recipe") or {}
    except CheckpointError:  # policies without a recipe (scripted, adapters) name none
        return "rtc"
    eval_section = recipe.get("eval") if isinstance(recipe, dict) else None
    return str((eval_section or {}).get("execution") or "rtc")


def load_checkpoint(path: Path, inference_steps: int | None) -> Policy:
    """``load_policy`` with load failures turned into one-line errors."""
    overrides: dict[str, Any] = {}
    if inference_steps is not None:
        overrides["inference_steps"] = inference_steps
    try:
        from robot_learning.policies import load_policy
    except ImportError as exc:
        raise CLIError(
            f"cannot load policies in this installation ({exc}); install the training extra: "
            "pip install -e '.[train]'"
        ) from exc
    PROGRESS.info("loading policy from %s", path)
    try:
        return load_policy(path, **overrides)
    except (ImportError, OSError, ValueError, KeyError, TypeError) as exc:
        LOG.debug("loading %s failed", path, exc_info=True)
        message = str(exc)
        if str(path) not in message:
            message = f"cannot load the policy in {path}: {message}"
        raise CLIError(message) from exc


def _finite(value: Any) -> Any:
    """NaN/Inf -> None, so eval.json is strict JSON (like ``print_json``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f}%"


def _ms(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.1f} ms"


def print_summary(summary: dict[str, Any], result: EvalResult) -> None:
    """The human-readable table (stdout)."""
    print(
        f"eval {summary['task']} ({summary['variant']}): {result.episodes} episodes, "
        f"{result.num_envs} env(s), policy {summary['policy']}"
    )
    print(
        f"  success rate    {_pct(result.success_rate)}  ({result.successes}/{result.episodes}; "
        f"95% CI {_pct(result.ci95_low)}-{_pct(result.ci95_high)})"
    )
    print(
        f"  episode length  {result.episode_len_mean:.1f} steps mean, "
        f"{result.episode_len_median:g} median"
    )
    print(
        f"  latency         p50 {_ms(result.latency_ms_p50)}, p99 {_ms(result.latency_ms_p99)}"
        f" ({result.chunks} predict_chunk calls)"
    )
    ex = result.execution
    if ex:
        print(
            f"  execution       {ex['mode']}, inference delay {ex['inference_delay_ms']:g} ms: "
            f"{ex['stalls']} stalls, {ex['dropped_actions']} late actions dropped"
        )
        if ex.get("boundary_ticks") and ex.get("within_ticks"):
            print(
                "  velocity jumps  max "
                f"{ex['boundary_jump_rad_s_max']:.3f} rad/s at chunk joins, "
                f"{ex['within_jump_rad_s_max']:.3f} within chunks"
            )
    interventions = {k: v for k, v in result.safety.items() if v}
    print(
        "  safety layer    "
        + (", ".join(f"{k} {v}" for k, v in interventions.items()) or "no interventions")
    )
    print(f"  wall time       {result.wall_s:.1f} s ({result.steps_per_s:.0f} env steps/s)")
    for video in result.videos:
        print(f"  video           {video}")
    print(f"  results         {summary['eval_json']}")


def connect_server(url: str, token_file: str | None, policy_name: str | None) -> Policy:
    """A :class:`RemotePolicy` on a running ``robot-learning serve``, or a one-line error."""
    from robot_learning.cli.serve import read_token
    from robot_learning.serving.client import PolicyClient, ServerUnavailable
    from robot_learning.serving.remote_policy import RemotePolicy

    token = read_token(token_file) if token_file else None
    client = PolicyClient(url, token=token, policy=policy_name)
    PROGRESS.info("connecting to %s", url)
    try:
        client.connect()
    except ServerUnavailable as exc:
        raise CLIError(f"--server {url}: {exc}") from exc
    return RemotePolicy(client)


def check_task_options(task: str, items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict the task's constructor accepts, else a CLIError naming them."""
    import inspect

    from robot_learning.sim.tasks import TASKS, make_task

    options = key_values(items, "--task-opt", "phrasing=heldout")
    if not options:
        return options
    accepted = [p for p in inspect.signature(TASKS.get(task)).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise CLIError(
            f"--task-opt {', '.join(unknown)}: task {task!r} takes "
            + (f"options: {', '.join(accepted)}" if accepted else "no options")
        )
    try:
        make_task(task, **options)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--task-opt for {task!r}: {exc}") from exc
    return options


def cmd_eval(args: argparse.Namespace) -> int:
    from robot_learning.cli.sim import check_task, check_variant

    task = check_task(args.task)
    variant = check_variant(args.variant)
    task_options = check_task_options(task, args.task_opt)
    run_name = "-".join([task, variant, *(f"{k}-{v}" for k, v in task_options.items())])
    if (args.policy is None) == (args.server is None):
        raise CLIError("give exactly one of --policy DIR or --server ws://HOST:PORT")
    if args.policy is not None:
        policy_dir = check_policy_dir(args.policy)
        out = Path(args.out) if args.out else policy_dir / "eval" / run_name
        policy = load_checkpoint(policy_dir, args.steps)
        source = str(policy_dir)
        execution = args.execution or recipe_execution(policy_dir)
    else:
        if args.steps is not None:
            raise CLIError("--steps applies to a local --policy; the server sets its own")
        out = Path(args.out) if args.out else Path("eval") / run_name
        policy = connect_server(args.server, args.token_file, args.server_policy)
        source = args.server
        execution = args.execution or "rtc"
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: exists and is not a directory")

    from robot_learning.eval.rollout import evaluate
    from robot_learning.specs import SpecError

    def progress(record: EpisodeRecord, finished: int, total: int) -> None:
        PROGRESS.info(
            "episode %d/%d (seed %d): %s after %d steps",
            finished,
            total,
            record.seed,
            "success" if record.success else "failure",
            record.length,
        )

    try:
        result = evaluate(
            policy,
            task,
            args.episodes,
            variant=variant,
            num_envs=args.num_envs,
            seed=args.seed,
            video_dir=out,
            videos=args.videos,
            execution=execution,  # type: ignore[arg-type]
            inference_delay_ms=args.inference_delay_ms,
            progress=progress,
            task_options=task_options,
        )
    except SpecError as exc:
        raise CLIError(f"the policy at {source} does not fit task {task!r}: {exc}") from exc
    except ValueError as exc:  # e.g. a control rate the sim cannot run
        LOG.debug("evaluation failed", exc_info=True)
        raise CLIError(f"cannot evaluate the policy at {source} on {task!r}: {exc}") from exc
    finally:
        close = getattr(policy, "close", None)
        if callable(close):
            close()
    summary: dict[str, Any] = {**result.to_json(), "policy": source, "task_options": task_options}
    eval_json = out / "eval.json"
    summary["eval_json"] = str(eval_json)
    out.mkdir(parents=True, exist_ok=True)
    eval_json.write_text(json.dumps(_finite(summary), indent=2) + "\n")
    LOG.debug("wrote %s", eval_json)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, result)
    return 0


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a policy checkpoint in the MuJoCo sim",
        description="Roll out a policy checkpoint for N seeded episodes of a simulated task "
        "(episode k uses seed S+k) on vectorized envs; report the success rate with a Wilson 95% "
        "confidence interval, episode length and predict_chunk latency, and write eval.json "
        "and rollout videos.",
    )
    p.add_argument("--policy", default=None, metavar="DIR", help="checkpoint directory")
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="evaluate the policy served at ws://HOST:PORT (or wss://) instead of --policy",
    )
    p.add_argument(
        "--server-policy",
        default=None,
        metavar="NAME",
        help="which of the server's policies (default: the server's default)",
    )
    p.add_argument(
        "--token-file", default=None, metavar="F", help="file holding the server's access token"
    )
    p.add_argument("--task", required=True, help="task name (see 'sim list')")
    p.add_argument(
        "--task-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="task option, repeatable (e.g. phrasing=heldout for pick_language's unseen wordings)",
    )
    p.add_argument(
        "--episodes", type=positive_int, required=True, metavar="N", help="episodes to run"
    )
    p.add_argument(
        "--variant",
        default="default",
        help="default | train | real-proxy (default: default)",
    )
    p.add_argument(
        "--num-envs",
        type=positive_int,
        default=2,
        metavar="K",
        help="envs stepped in parallel, one subprocess each (default: 2)",
    )
    p.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the first episode (default: 0)"
    )
    p.add_argument(
        "--videos",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="record the first N episodes as mp4 (default: 2)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where eval.json and the videos go (default: DIR/eval/<task>-<variant>)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        metavar="K",
        help="override the number of denoising steps at inference (default: the checkpoint's)",
    )
    p.add_argument(
        "--execution",
        choices=["rtc", "ensemble", "naive"],
        default=None,
        help="how chunks are joined: rtc (request early, hold the committed prefix), "
        "ensemble (average overlapping chunks), naive (wait for each chunk) (default: the "
        "checkpoint recipe's eval.execution, else rtc)",
    )
    p.add_argument(
        "--inference-delay-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="deliver every chunk this much later in sim time, as a slow server would (default: 0)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(handler=cmd_eval)


__all__ = ["add_parser", "check_policy_dir", "cmd_eval", "load_checkpoint", "non_negative_int"]

"""The demo's report: one self-contained folder with ``index.html``, PNG figures and videos.

Every number comes from the stages' own outputs: the success rates and latencies of ``eval``
are the JSON that ``robot-learning eval --json`` printed, the ROS 2 loop's are the episode
runner's summary; nothing is recomputed, so the page shows what the commands printed.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.demo.config import DemoConfig


@dataclass(frozen=True)
class Row:
    """One line of the summary table: where the policy ran and how it did."""

    name: str
    episodes: int
    successes: int
    rate: float
    low: float
    high: float
    latency: str  # what was timed and its p50 / p99

    @staticmethod
    def from_summary(name: str, summary: dict[str, Any], latency: str) -> Row:
        """From an ``eval`` or episode-runner summary (they share the success keys)."""
        return Row(
            name,
            int(summary["episodes"]),
            int(summary["successes"]),
            float(summary["success_rate"]),
            float(summary["success_ci95_low"]),
            float(summary["success_ci95_high"]),
            latency,
        )

    def cells(self) -> list[str]:
        return [
            self.name,
            f"{self.successes}/{self.episodes}",
            f"{self.rate:.0%}",
            f"{self.low:.0%}-{self.high:.0%}",
            self.latency,
        ]


HEADER = ["run", "successes", "rate", "95% CI", "latency p50 / p99"]


def summary_rows(results: dict[str, Any], ros_variant: str) -> list[Row]:
    rows = [
        Row.from_summary(
            f"eval ({variant})",
            r,
            f"predict_chunk {r['latency_ms_p50']:.1f} / {r['latency_ms_p99']:.1f} ms",
        )
        for variant, r in results["eval"]["variants"].items()
    ]
    ros = results["ros2"]
    lat = np.asarray(ros.get("command_latency_ms") or [np.nan])
    p50, p99 = np.nanpercentile(lat, [50, 99]) if np.isfinite(lat).any() else (np.nan, np.nan)
    latency = f"observation -> command {p50:.1f} / {p99:.1f} ms"
    rows.append(Row.from_summary(f"ROS 2 loop ({ros_variant})", ros, latency))
    return rows


def text_table(rows: list[Row]) -> str:
    """The summary as aligned plain text, for the terminal."""
    table = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def safety_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Safety-layer interventions by rule: one column per run (eval variants, ROS 2 loop)."""
    columns: dict[str, dict[str, int]] = {}
    for variant, r in results["eval"]["variants"].items():
        columns[f"eval ({variant})"] = {k: int(v) for k, v in r["safety_interventions"].items()}
    client = results["ros2"].get("policy_client", {})
    columns["ROS 2 loop"] = {
        k.removeprefix("safety_"): int(v) for k, v in client.items() if k.startswith("safety_")
    }
    rules = sorted({rule for col in columns.values() for rule, n in col.items() if n})
    body = [[rule, *(str(col.get(rule, 0)) for col in columns.values())] for rule in rules]
    return ["rule", *columns], body


# ---- figures ------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_success(rows: list[Row], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    x = np.arange(len(rows))
    rates = np.array([r.rate for r in rows])
    err = np.array([[r.rate - r.low for r in rows], [r.high - r.rate for r in rows]])
    colors = ["#4c72b0" if r.name.startswith("eval") else "#dd8452" for r in rows]
    ax.bar(x, rates, yerr=err, capsize=6, color=colors)
    for i, r in enumerate(rows):
        ax.text(i, min(r.high, 1.0) + 0.03, f"{r.rate:.0%}", ha="center")
    ax.set_xticks(x, [r.name for r in rows])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("success rate (95% CI)")
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(ros: dict[str, Any], path: Path) -> Path:
    """Histogram up to 1.5x the p99; the few commands beyond it (an episode's first, which
    waits for its first chunk) are counted in the title, not drawn."""
    plt = _pyplot()
    lat = np.asarray(ros.get("command_latency_ms") or [], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    title = f"ROS 2 loop, {lat.size} commands"
    if lat.size:
        p50, p99 = (float(v) for v in np.percentile(lat, [50, 99]))
        top = max(1.5 * p99, 1.0)
        beyond = int(np.sum(lat > top))
        ax.hist(lat[lat <= top], bins=60, range=(0.0, top), color="#55a868")
        ax.axvline(p50, color="black", lw=1, label=f"p50 {p50:.1f} ms")
        ax.axvline(p99, color="black", ls="--", lw=1, label=f"p99 {p99:.1f} ms")
        ax.legend()
        if beyond:
            title += f" ({beyond} above {top:.0f} ms not drawn)"
    ax.set_xlabel("observation stamp -> command received (ms)")
    ax.set_ylabel("commands")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def poster(video: Path, path: Path) -> Path | None:
    """A frame from the middle of ``video`` as PNG (shown where a browser plays no video)."""
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(video), format="FFMPEG")
        try:
            frames = [np.asarray(f) for f in reader.iter_data()]  # rollout videos are short
        finally:
            reader.close()
        imageio.imwrite(str(path), frames[len(frames) // 2])
    except (OSError, RuntimeError, IndexError, ValueError):
        return None
    return path


# ---- the page ---------------------------------------------------------------------------------
def _table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#222}
h1{margin-bottom:0.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:0.5em 0 1.5em} td,th{border:1px solid #ccc;
padding:4px 10px;text-align:left} th{background:#f3f3f3}
.figs{display:flex;flex-wrap:wrap;gap:12px} .figs img{max-width:480px;border:1px solid #ddd}
video{width:320px;border:1px solid #ddd} .videos{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0} figcaption{font-size:0.85em;color:#555}
code{background:#f3f3f3;padding:1px 4px} pre{white-space:pre-wrap;background:#f6f6f6;
padding:8px}
"""


def build_report(cfg: DemoConfig, results: dict[str, Any]) -> dict[str, Any]:
    """Write ``report/index.html`` and its figures; return the paths and the summary rows."""
    out = cfg.report_dir
    if out.exists():
        shutil.rmtree(out)
    (out / "videos").mkdir(parents=True)
    rows = summary_rows(results, cfg.ros_variant)
    figures = {"success": plot_success(rows, out / "success_rates.png")}
    figures["latency"] = plot_latency(results["ros2"], out / "latency.png")
    curves = cfg.policy_dir / "curves.png"
    if curves.is_file():
        figures["training"] = Path(shutil.copy(curves, out / "training_curve.png"))
    videos = []
    for variant, r in results["eval"]["variants"].items():
        for episode in r.get("per_episode", []):
            src = episode.get("video")
            if not src or not Path(src).is_file():
                continue
            name = f"{variant}_{Path(src).name}"
            dst = Path(shutil.copy(src, out / "videos" / name))
            still = poster(dst, dst.with_suffix(".png"))
            outcome = "success" if episode["success"] else "failure"
            videos.append((dst, still, f"{variant}, seed {episode['seed']}: {outcome}"))
    train = results["train"]
    collect = results["collect"]
    ros = results["ros2"]
    safety_header, safety_body = safety_table(results)
    video_html = "".join(
        f'<figure><video controls muted loop preload="metadata" '
        f'src="videos/{html.escape(v.name)}"'
        + (f' poster="videos/{html.escape(p.name)}"' if p else "")
        + f"></video><figcaption>{html.escape(c)}</figcaption></figure>"
        for v, p, c in videos
    )
    late = int(ros["per_episode"][-1].get("late_commands", 0)) if ros.get("per_episode") else 0
    client = ros.get("policy_client", {})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robot_learning demo: {cfg.task}</title>
<style>{CSS}</style></head><body>
<h1>robot_learning demo: <code>{html.escape(cfg.task)}</code></h1>
<p class="sub">{collect["episodes"]} scripted demonstrations in MuJoCo ({collect["steps"]}
steps at {cfg.fps:g} Hz) &rarr; diffusion policy ({train["steps"]} steps,
{train["wall_s"] / 60:.1f} min) &rarr; <code>robot-learning eval</code> &rarr; policy server +
ROS 2 sim node + policy client node.</p>
<h2>Success</h2>
{_table(HEADER, [r.cells() for r in rows])}
<p>Evaluation episodes use seeds {cfg.eval_seed}&ndash;{cfg.eval_seed + cfg.eval_episodes - 1};
the ROS 2 loop runs seeds {cfg.eval_seed}&ndash;{cfg.eval_seed + cfg.ros_episodes - 1} of the
<code>{html.escape(cfg.ros_variant)}</code> variant in real time ({
        late
    } late commands: ticks the sim stepped before its
command arrived). <code>train</code> draws physics, visuals, camera pose, latency and noise per
episode from the ranges the demonstrations were recorded in; <code>real-proxy</code> from
held-out ranges outside them, as a stand-in for the real robot.</p>
<div class="figs">
<figure><img src="success_rates.png" alt="success rates"><figcaption>Success rate with Wilson
95% interval; dashed line: 80%.</figcaption></figure>
{
        '<figure><img src="training_curve.png" alt="training curve"><figcaption>Training loss '
        "(EMA policy checkpoints every few hundred steps).</figcaption></figure>"
        if "training" in figures
        else ""
    }
<figure><img src="latency.png" alt="latency histogram"><figcaption>ROS 2 loop: from the
stamp of an observation to its command arriving (client: window, chunk executor, safety layer,
IK; chunks come from the server in the background).</figcaption></figure>
</div>
<h2>Safety layer</h2>
<p>Interventions by rule. Holds: <code>no_action</code>, <code>stale_obs</code>, <code>nan</code>,
<code>estop</code>; the others clamp a command to its limit. The ROS 2 client sent
{html.escape(str(client.get("commands_sent", "?")))} commands.</p>
{
        _table(safety_header, safety_body) + "<p>Rules not listed intervened in no run.</p>"
        if safety_body
        else "<p>No intervention by any rule in any run.</p>"
    }
<h2>Rollouts</h2>
<div class="videos">{video_html or "<p>no videos recorded</p>"}</div>
<h2>Reproduce</h2>
<pre>{html.escape(reproduce(cfg, train))}</pre>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return {
        "html": str(index),
        "figures": {k: str(v) for k, v in figures.items()},
        "videos": [str(v) for v, _, _ in videos],
        "summary": [r.__dict__ for r in rows],
    }


def reproduce(cfg: DemoConfig, train: dict[str, Any]) -> str:
    """The commands that the stages ran, for the report's reader to run by hand."""
    first, last = cfg.eval_seed, cfg.eval_seed + cfg.ros_episodes - 1
    return "\n".join(
        [
            f"robot-learning collect --robot sim:{cfg.task} --teleop scripted --episodes "
            f"{cfg.demos} --out {cfg.store} --no-realtime --no-keys --cameras none --fps "
            f"{cfg.fps:g} --variant train --seed {cfg.collect_seed}",
            f"robot-learning train --recipe {train.get('recipe_file', cfg.recipe)} --data "
            f"{cfg.store} --out {cfg.policy_dir}",
            *(
                f"robot-learning eval --policy {cfg.policy_dir} --task {cfg.task} --episodes "
                f"{cfg.eval_episodes} --variant {v} --seed {cfg.eval_seed} --execution "
                f"{cfg.execution}"
                for v in cfg.variants
            ),
            f"robot-learning bringup ros2_ws/src/robot_learning_ros/bringup/sim_robot.yaml "
            f"--arg policy={cfg.policy_dir} --arg variant={cfg.ros_variant} --arg seed={first}"
            f"   # + the episode runner "
            f"(seeds {first}-{last})",
        ]
    )

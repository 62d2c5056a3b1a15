"""Recording throughput: 3 RGB cameras 640x480 @ 30 Hz + 7-joint state @ 500 Hz into one store.

Why: a teleoperation rig records several cameras and fast proprioception at once, each sensor
on its own thread at its own rate. The goal is to drop nothing on a 2-core machine: every frame
a producer captures is handed to the writer in time and reaches disk with bounded latency.

What it runs (``robot_learning.data.recorder.StreamRecorder``): one producer thread per source,
each sleeping to the capture times of its own sensor clock (``time.monotonic()`` base):

* ``cam0_rgb`` / ``cam1_rgb`` / ``cam2_rgb``: frames pre-rendered from the MuJoCo lift scene
  (scene, wrist, and scene half a sequence later) at 640x480 while the scripted expert moves
  the arm; each captured frame is a copy with a small moving marker drawn in, so every frame
  differs like a live camera's would (no constant or random-noise frames).
* ``joint_pos``: 7 joints at 500 Hz (smooth sinusoids), float64.
* ``action``: a 7-D command on the control timeline at 30 Hz (the store's steps).

Cameras and joints are async streams of one ``EpisodeStore``; the whole run is one episode,
committed at the end. A sample is *dropped* when its producer cannot hand it over within one of
its own periods. Latency is capture -> on disk for frames (the writer's write task finishing)
and capture -> handed over for low-dim samples (they are written at commit).

Usage (repo root)::

    MUJOCO_GL=egl .venv/bin/python scripts/bench/record_throughput.py [--seconds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # runnable as a plain script from any working directory
    sys.path.insert(0, str(REPO))
os.environ.setdefault("MUJOCO_GL", "egl")

from robot_learning.data.disk import disk_usage  # noqa: E402
from robot_learning.data.recorder import STEP, StreamRecorder  # noqa: E402
from robot_learning.data.store import EpisodeStore  # noqa: E402
from robot_learning.specs import FeatureSpec, SpecDict  # noqa: E402

LOG = logging.getLogger("record_throughput")
JOINTS = 7
MARKER = 24  # px side of the moving marker drawn into every frame


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="recording length (default: 60)")
    p.add_argument("--cameras", type=int, default=3, help="camera streams (default: 3)")
    p.add_argument("--camera-hz", type=float, default=30.0, help="camera rate (default: 30)")
    p.add_argument("--joint-hz", type=float, default=500.0, help="joint-state rate (default: 500)")
    p.add_argument("--size", default="480x640", help="camera HxW (default: 480x640)")
    p.add_argument("--image-format", default="jpeg", choices=("jpeg", "jpegxl", "png"))
    p.add_argument("--quality", type=int, default=90, help="jpeg/jpegxl quality (default: 90)")
    p.add_argument("--frames", type=int, default=90, help="distinct pre-rendered frames per camera")
    p.add_argument("--out", type=Path, default=None, help="store path (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the store (default: delete it)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    h, _, w = args.size.partition("x")
    args.height, args.width = int(h), int(w)
    if args.seconds <= 0 or args.cameras < 1 or args.frames < 2:
        p.error("--seconds must be > 0, --cameras >= 1, --frames >= 2")
    return args


# ---- frames ------------------------------------------------------------------------------------
def prerender(n: int, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``n`` frames each of the scene and wrist cameras while the lift expert works."""
    from drivers.registry import make_robot, make_teleop

    robot = make_robot("sim:lift", cameras=("scene", "wrist"), image_size=size)
    teleop = make_teleop("scripted", robot=robot)
    frames: dict[str, list[np.ndarray]] = {"scene": [], "wrist": []}
    with robot, teleop:
        obs, seed = robot.reset(seed=0), 0
        teleop.reset(seed=0)
        while len(frames["scene"]) < n:
            for cam in frames:
                frames[cam].append(obs.values[f"{cam}_rgb"])
            robot.send_action(teleop.get_action(obs))
            obs = robot.get_observation()
            if robot.done:
                seed += 1
                obs = robot.reset(seed=seed)
                teleop.reset(seed=seed)
    return {cam: np.stack(v) for cam, v in frames.items()}


def camera_sources(rendered: dict[str, np.ndarray], cameras: int) -> list[np.ndarray]:
    """Camera i: scene, wrist, then the scene again shifted half a sequence, and so on."""
    names = ["scene", "wrist"]
    out = []
    for i in range(cameras):
        seq = rendered[names[i % 2]]
        out.append(np.roll(seq, (i // 2) * len(seq) // 2, axis=0))
    return out


def live_frame(base: np.ndarray, k: int) -> np.ndarray:
    """A copy of ``base`` with a marker at a position that moves every frame."""
    frame = base.copy()
    h, w = frame.shape[:2]
    y = (k * 7) % (h - MARKER)
    x = (k * 13) % (w - MARKER)
    frame[y : y + MARKER, x : x + MARKER] = (255, (k * 5) % 256, 0)
    return frame


# ---- producers ---------------------------------------------------------------------------------
@dataclass
class Producer:
    """One sensor: sample ``k`` is captured at ``t_start + k / hz`` on the sensor's clock."""

    key: str
    hz: float
    late: int = 0  # samples the thread emitted more than one period after their capture time
    captured: int = 0


def run_producer(
    producer: Producer,
    recorder: StreamRecorder,
    make: Any,
    t_start: float,
    n_samples: int,
) -> None:
    """Emit every sample of the sensor clock, stamped with its capture time.

    A sensor does not skip samples because the reading thread was late (a driver buffers them),
    so a late thread emits them late: that shows as latency and in ``late``, never as fake
    timestamps. The hand-over deadline is one period after capture.
    """
    period = 1.0 / producer.hz
    for k in range(n_samples):
        t_capture = t_start + k * period
        wait = t_capture - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif -wait > period:
            producer.late += 1
        value = make(k, t_capture)
        timeout = t_capture + period - time.monotonic()
        if producer.key == STEP:
            recorder.submit_step({"action": value}, t_capture, timeout_s=timeout)
        else:
            recorder.submit(producer.key, value, t_capture, timeout_s=timeout)
        producer.captured += 1


def _camera_maker(frames: np.ndarray) -> Any:
    return lambda k, t: live_frame(frames[k % len(frames)], k)


def joint_value(k: int, t: float) -> np.ndarray:
    phase = np.arange(JOINTS) * 0.7
    return 0.4 * np.sin(2 * math.pi * 0.25 * t + phase)


# ---- measurement -------------------------------------------------------------------------------
def measure(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.monotonic()
    rendered = prerender(args.frames, (args.height, args.width))
    prerender_s = time.monotonic() - t0
    sources = camera_sources(rendered, args.cameras)
    cams = [f"cam{i}_rgb" for i in range(args.cameras)]
    features = SpecDict(
        {
            **{c: FeatureSpec((args.height, args.width, 3), "uint8", "rgb") for c in cams},
            "joint_pos": FeatureSpec((JOINTS,), "float64", "lowdim", description="rad"),
            "action": FeatureSpec((JOINTS,), "float32", "lowdim"),
        }
    )
    tmp = None
    if args.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="record_throughput_"))
        path = tmp / "bench.zarr"
    else:
        path = args.out
    try:
        return _record(args, path, features, cams, sources, prerender_s)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _record(
    args: argparse.Namespace,
    path: Path,
    features: SpecDict,
    cams: list[str],
    sources: list[np.ndarray],
    prerender_s: float,
) -> dict[str, Any]:
    store = EpisodeStore.create(
        path,
        features,
        actions=("action",),
        fps=args.camera_hz,
        robot="bench",
        async_streams=[*cams, "joint_pos"],
        image_format=args.image_format,
        image_quality=args.quality,
        overwrite=args.out is not None,
    )
    with store:
        writer = store.new_episode(task="record_throughput", source="bench")
        recorder = StreamRecorder(writer).start()
        producers = [Producer(c, args.camera_hz) for c in cams]
        producers += [Producer("joint_pos", args.joint_hz), Producer(STEP, args.camera_hz)]
        makers: list[Any] = [_camera_maker(src) for src in sources]
        makers += [joint_value, lambda k, t: joint_value(k, t).astype(np.float32)]
        t_start = time.monotonic() + 0.2
        threads = [
            threading.Thread(
                target=run_producer,
                args=(p, recorder, m, t_start, round(args.seconds * p.hz)),
                name=p.key,
            )
            for p, m in zip(producers, makers)
        ]
        depth = _QueueDepth(recorder).start()
        cpu0 = _cpu_s()
        for th in threads:
            th.start()
        time.sleep(max(0.0, t_start - time.monotonic()))
        wall0 = time.monotonic()
        for th in threads:
            th.join()
        produced_s = time.monotonic() - wall0
        recorder.stop()  # drain and flush: every frame on disk
        drain_s = time.monotonic() - wall0 - produced_s
        t_commit = time.monotonic()
        writer.commit(success=None)
        commit_s = time.monotonic() - t_commit
        cpu_s, wall_s = _cpu_s() - cpu0, time.monotonic() - wall0
        depth.stop()
        streams = _stream_report(args, store, recorder, producers)
        backpressure = writer.backpressure_waits
    total_bytes = disk_usage(path)
    dropped = sum(s["dropped"] for s in streams.values())
    return {
        "seconds": args.seconds,
        "cameras": len(cams),
        "camera_size": [args.height, args.width],
        "camera_hz": args.camera_hz,
        "joint_hz": args.joint_hz,
        "image_format": args.image_format,
        "image_quality": args.quality,
        "streams": streams,
        "dropped_total": dropped,
        "goal_zero_dropped": dropped == 0,
        "backpressure_waits": backpressure,
        "writer_call_s_total": round(recorder.writer_s, 3),
        "writer_call_ms_max": round(recorder.writer_call_max_s * 1e3, 3),
        "queue_depth_max": depth.max_depth,
        "produce_s": round(produced_s, 3),
        "drain_after_stop_s": round(drain_s, 3),
        "commit_s": round(commit_s, 3),
        "cpu_s": round(cpu_s, 2),
        "cpu_percent_of_one_core": round(100 * cpu_s / wall_s, 1),
        "cpu_percent_of_machine": round(100 * cpu_s / wall_s / (os.cpu_count() or 1), 1),
        "cores": os.cpu_count(),
        "rss_mb_at_start": round(depth.rss_start_mb, 1),
        "rss_mb_max_while_recording": round(depth.rss_max_mb, 1),
        "max_rss_mb_incl_prerender": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "store_bytes": total_bytes,
        "store_mb_per_s": round(total_bytes / 1e6 / args.seconds, 2),
        "prerender_s": round(prerender_s, 2),
        "store": str(path) if args.keep or args.out is not None else None,
    }


def _stream_report(
    args: argparse.Namespace,
    store: EpisodeStore,
    recorder: StreamRecorder,
    producers: list[Producer],
) -> dict[str, dict[str, Any]]:
    stats = recorder.stats
    out: dict[str, dict[str, Any]] = {}
    for p in producers:
        key = "action" if p.key == STEP else p.key
        s = stats[p.key]
        rows = store.episode_range(0, key if key in store.async_streams else None)
        n_rows = rows[1] - rows[0]
        stored = disk_usage(store.root / "data" / key)
        raw = int(np.prod(store.features[key].shape)) * np.dtype(store.features[key].dtype).itemsize
        out[key] = {
            "rate_hz": p.hz,
            "expected": round(args.seconds * p.hz),
            "captured": p.captured,
            "late": p.late,
            "recorded": s.recorded,
            "stored_rows": n_rows,
            "dropped": s.dropped,
            "latency_ms_p50": round(s.latency_ms(50), 3),
            "latency_ms_p99": round(s.latency_ms(99), 3),
            "latency_ms_max": round(s.latency_ms(100), 3),
            "latency_kind": "capture_to_disk"
            if key in store.features.of_kind("rgb")
            else "capture_to_handover",
            "bytes_per_frame": round(stored / n_rows, 1) if n_rows else None,
            "raw_bytes_per_frame": raw,
        }
    return out


def _rss_mb() -> float:
    """Current resident memory (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _QueueDepth:
    """Samples the recorder's queue depth and the process RSS at 20 Hz while recording."""

    def __init__(self, recorder: StreamRecorder) -> None:
        self.recorder = recorder
        self.max_depth = 0
        self.rss_start_mb = _rss_mb()
        self.rss_max_mb = self.rss_start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _QueueDepth:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.max_depth = max(self.max_depth, self.recorder.queued)
            self.rss_max_mb = max(self.rss_max_mb, _rss_mb())


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_text(r: dict[str, Any]) -> None:
    print(
        f"{r['cameras']} cameras {r['camera_size'][1]}x{r['camera_size'][0]} @ "
        f"{r['camera_hz']:g} Hz + {JOINTS} joints @ {r['joint_hz']:g} Hz for {r['seconds']:g} s "
        f"({r['image_format']} q{r['image_quality']}, {r['cores']} cores)"
    )
    print(
        f"{'stream':<10} {'expected':>8} {'captured':>8} {'recorded':>8} {'dropped':>7} "
        f"{'late':>5} {'p50 ms':>8} {'p99 ms':>8} {'B/frame':>9}"
    )
    for key, s in r["streams"].items():
        print(
            f"{key:<10} {s['expected']:>8} {s['captured']:>8} {s['recorded']:>8} "
            f"{s['dropped']:>7} {s['late']:>5} {s['latency_ms_p50']:>8.2f} "
            f"{s['latency_ms_p99']:>8.2f} {s['bytes_per_frame'] or 0:>9.0f}"
        )
    verdict = "goal met" if r["goal_zero_dropped"] else "GOAL MISSED"
    print(
        f"dropped {r['dropped_total']} ({verdict}); writer calls {r['writer_call_s_total']} s "
        f"(max {r['writer_call_ms_max']} ms), backpressure count {r['backpressure_waits']}; "
        f"max queue {r['queue_depth_max']}; CPU {r['cpu_percent_of_one_core']}% of one core "
        f"({r['cpu_percent_of_machine']}% of the machine); store "
        f"{r['store_bytes'] / 1e6:.1f} MB ({r['store_mb_per_s']} MB/s); drain "
        f"{r['drain_after_stop_s']} s, commit {r['commit_s']} s"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    result = measure(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_text(result)
    return 0 if result["goal_zero_dropped"] else 1


if __name__ == "__main__":
    sys.exit(main())

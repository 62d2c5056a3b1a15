"""``robot-learning dataset info STORE [--json]``: what an episode store holds and what it costs.

Reports episodes, steps, duration, fps, robot, every feature (shape, dtype, kind, role, codec id
and configuration from the array's zarr metadata), size on disk against raw size per key and
overall, success rate where labelled, tasks and instructions, async streams, and whether a killed
writer left an uncommitted tail (the store is opened read-only: reported, not repaired).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from robot_learning.cli import CLIError, print_json
from robot_learning.data.disk import disk_usage


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarize an episode store (episodes, features, codecs, sizes, success rate)",
        description=__doc__.splitlines()[0].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store", metavar="STORE", help="path of the episode store")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=_run)


def _ratio(raw: int, stored: int) -> float:
    return round(raw / stored, 3) if stored else float("nan")


def store_info(store: Any) -> dict[str, Any]:
    """The figures of ``dataset info`` for an open :class:`EpisodeStore`."""
    from robot_learning.data import layout as L
    from robot_learning.data.verify import array_codecs, committed_rows, uncommitted_tail

    features: dict[str, Any] = {}
    raw_total = 0
    for key, spec in store.features.items():
        entry: dict[str, Any] = {
            "shape": list(spec.shape),
            "dtype": spec.dtype,
            "kind": spec.kind,
            "role": store.roles.get(key, "observation"),
            "async": key in store.async_streams,
        }
        if L.is_stored_array(spec):
            arr = store.array(key)
            rows = committed_rows(store, key)
            raw = rows * spec.size * arr.dtype.itemsize + rows * 8  # + float64 timestamps
            stored = disk_usage(store.root / L.DATA / key) + disk_usage(
                store.root / L.TIMESTAMPS / key
            )
            entry.update(
                rows=rows,
                chunks=list(arr.chunks),
                codecs=[
                    {"id": c.get("name"), "configuration": c.get("configuration", {})}
                    for c in array_codecs(arr)
                ],
                raw_bytes=raw,
                size_bytes=stored,
                compression_ratio=_ratio(raw, stored),
            )
            raw_total += raw
        features[key] = entry
    episodes = store.episodes_meta()
    lengths = [store.episode_length(i) for i in range(store.n_episodes)]
    labelled = [e["success"] for e in episodes if e.get("success") is not None]
    size = store.nbytes_stored()
    streams = {}
    for key in store.async_streams:
        samples = committed_rows(store, key)
        duration = store.n_steps / store.fps if store.fps else 0.0
        streams[key] = {
            "samples": samples,
            "rate_hz": round(samples / duration, 3) if duration else None,
        }
    tail = uncommitted_tail(store)
    return {
        "store": str(store.root),
        "format_version": store.info.get("version"),
        "created": store.info.get("created"),
        "robot": store.robot,
        "fps": store.fps,
        "episodes": store.n_episodes,
        "steps": store.n_steps,
        "duration_s": round(store.n_steps / store.fps, 3) if store.fps else None,
        "episode_steps_min": min(lengths, default=0),
        "episode_steps_max": max(lengths, default=0),
        "episode_steps_mean": round(sum(lengths) / len(lengths), 2) if lengths else 0.0,
        "success_rate": round(sum(labelled) / len(labelled), 4) if labelled else None,
        "success_labelled": len(labelled),
        "tasks": dict(Counter(str(e.get("task", "")) for e in episodes).most_common()),
        "instructions": dict(Counter(str(e.get("instruction", "")) for e in episodes)),
        "operators": sorted({str(e.get("operator", "")) for e in episodes} - {""}),
        "features": features,
        "async_streams": streams,
        "size_bytes": size,
        "raw_bytes": raw_total,
        "compression_ratio": _ratio(raw_total, size),
        "uncommitted_tail": tail.to_json(),
    }


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _codec_text(codec: dict[str, Any]) -> str:
    """``blosc(cname=zstd, clevel=5, shuffle=shuffle)``: the settings a reader cares about."""
    hidden = {"typesize", "blocksize", "endian"}
    config = ", ".join(f"{k}={v}" for k, v in codec["configuration"].items() if k not in hidden)
    return f"{codec['id']}({config})" if config else str(codec["id"])


def _print_text(info: dict[str, Any]) -> None:
    sr = info["success_rate"]
    lines = [
        f"store        {info['store']}",
        f"robot        {info['robot'] or '-'}    fps {info['fps']:g}",
        f"episodes     {info['episodes']}    steps {info['steps']}    duration "
        f"{info['duration_s'] or 0:.1f} s    steps/episode {info['episode_steps_min']}.."
        f"{info['episode_steps_max']} (mean {info['episode_steps_mean']})",
        "success      "
        + (
            f"{sr:.1%} of {info['success_labelled']} labelled episode(s)"
            if sr is not None
            else "not labelled"
        ),
        f"size         {_human(info['size_bytes'])} on disk, {_human(info['raw_bytes'])} raw "
        f"(x{info['compression_ratio']:g})",
    ]
    tail = info["uncommitted_tail"]
    if tail["present"]:
        rows = ", ".join(f"{k}: {v}" for k, v in tail["rows"].items() if v)
        lines.append(
            f"UNCOMMITTED  {tail['episodes']} episode record(s), rows past the commit: "
            f"{rows or '-'} (repaired on the next write open)"
        )
    lines.append("features")
    for key, f in info["features"].items():
        shape = "x".join(map(str, f["shape"])) or "scalar"
        desc = f"  {key:<16} {f['role']:<11} {f['kind']:<8} {shape:<10} {f['dtype']:<8}"
        if "codecs" in f:
            codec = " + ".join(_codec_text(c) for c in f["codecs"] if c["id"] != "bytes")
            desc += f" {_human(f['size_bytes']):>10}  x{f['compression_ratio']:<6g} {codec}"
        if f["async"]:
            desc += "  [async]"
        lines.append(desc.rstrip())
    for key, s in info["async_streams"].items():
        lines.append(f"async        {key}: {s['samples']} samples (~{s['rate_hz']} Hz)")
    lines.append("tasks        " + "; ".join(f"{t or '-'} ({n})" for t, n in info["tasks"].items()))
    instr = info["instructions"]
    shown = list(instr.items())[:5]
    more = f"; ... {len(instr) - 5} more" if len(instr) > 5 else ""
    lines.append("instructions " + "; ".join(f"{t or '-'} ({n})" for t, n in shown) + more)
    print("\n".join(lines))


def _run(args: argparse.Namespace) -> int:
    from robot_learning.data import EpisodeStore, StoreError

    try:
        with EpisodeStore.open(args.store, "r") as store:
            info = store_info(store)
    except StoreError as exc:
        raise CLIError(str(exc)) from exc
    if args.json:
        print_json(info)
    else:
        _print_text(info)
    return 0

"""Check an episode store end to end: every committed chunk decodes and the metadata agrees.

Why: a store is written over hours by a process that may be killed, copied between machines
and edited by tools; a flipped byte in one JPEG chunk otherwise surfaces as a crash deep inside a
training run. ``verify`` reads every committed row (image frames in small blocks, falling back to
one frame at a time so the bad frame is named exactly) and reports each problem as one line that
names the episode and key. Rows past the last commit (a killed writer's tail) are a warning,
not a problem: the next write open repairs them.

zarr returns the fill value for a chunk file that does not exist, so a deleted image chunk would
read back as a black frame; image chunks are therefore checked for existence too. The store's
writers write every chunk, even one equal to the fill value, so a missing chunk file of a
committed frame is always damage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import zarr
from zarr.core.sync import sync

from robot_learning.data import layout as L
from robot_learning.data.codecs import CODEC_ID
from robot_learning.data.store import EPISODE_FIELDS, EpisodeStore

LOG = logging.getLogger(__name__)
IMAGE_BLOCK_ROWS = 32  # frames decoded per read; a failing block is re-read frame by frame
REQUIRED_EPISODE_FIELDS = ("index", "length", *EPISODE_FIELDS, "end_time")


@dataclass(frozen=True)
class Problem:
    """One finding; ``episode``/``key``/``row`` locate it when known."""

    message: str
    episode: int | None = None
    key: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        where = []
        if self.episode is not None:
            where.append(f"episode {self.episode}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        return f"{' '.join(where) or 'store'}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "key": self.key,
            "row": self.row,
            "message": self.message,
            "text": str(self),
        }


@dataclass
class TailReport:
    """What a killed writer left past the last commit (read-only: reported, never repaired)."""

    episodes: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def present(self) -> bool:
        return bool(self.episodes or any(self.rows.values()))

    def describe(self) -> str:
        if not self.present:
            return "none"
        parts = []
        if self.episodes:
            parts.append(f"{self.episodes} uncommitted episode record(s)")
        extra = {k: v for k, v in self.rows.items() if v}
        if extra:
            parts.append(
                "rows past the commit: " + ", ".join(f"{k}: {v}" for k, v in extra.items())
            )
        return "; ".join(parts) + " (repaired on the next write open)"

    def to_json(self) -> dict[str, Any]:
        return {"present": self.present, "episodes": self.episodes, "rows": dict(self.rows)}


@dataclass
class VerifyReport:
    """Everything ``verify`` found: problems fail the check, warnings do not."""

    store: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes_checked: int = 0
    rows_checked: int = 0
    frames_decoded: int = 0
    quick: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "ok": self.ok,
            "quick": self.quick,
            "problems": [p.to_json() for p in self.problems],
            "warnings": list(self.warnings),
            "episodes_checked": self.episodes_checked,
            "rows_checked": self.rows_checked,
            "frames_decoded": self.frames_decoded,
            "elapsed_s": round(self.elapsed_s, 3),
        }


# ---- helpers shared with `dataset info` -------------------------------------------------------
def raw_episode_ends(store: EpisodeStore) -> np.ndarray:
    """``meta/episode_ends`` as stored, including entries past the commit."""
    node = store.group[L.EPISODE_ENDS]
    assert isinstance(node, zarr.Array)
    return np.asarray(node[:], dtype=np.int64)


def raw_episode_records(store: EpisodeStore) -> list[Any]:
    return list(cast("list[Any]", store.group[L.META].attrs.get("episodes") or []))


def committed_rows(store: EpisodeStore, key: str) -> int:
    """Rows of ``data/<key>`` that belong to committed episodes."""
    if key in store.async_streams:
        return store.episode_range(-1, key)[1] if store.n_episodes else 0
    return store.n_steps


def uncommitted_tail(store: EpisodeStore) -> TailReport:
    """Compare array lengths and metadata with the committed end, without repairing anything."""
    n = store.n_episodes
    records = max(len(raw_episode_ends(store)), len(raw_episode_records(store)))
    report = TailReport(episodes=max(0, records - n))
    for key in store.array_keys():
        keep = committed_rows(store, key)
        longest = max(store.array(key).shape[0], store.timestamps_array(key).shape[0])
        report.rows[key] = max(0, longest - keep)
    return report


def episode_of_rows(ends: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Episode index of each row, given cumulative ``ends``."""
    return np.searchsorted(ends, rows, side="right")


def existing_chunk_keys(arr: zarr.Array) -> set[str]:
    """Chunk keys (``data/<key>/c/...``) that exist in the store, listed once per array."""

    async def collect() -> set[str]:
        return {k async for k in arr.store.list_prefix(f"{arr.path}/")}

    return sync(collect())


def chunk_key(arr: zarr.Array, row: int) -> str:
    coords = (row // arr.chunks[0],) + (0,) * (arr.ndim - 1)
    return f"{arr.path}/{arr.metadata.encode_chunk_key(coords)}"


# ---- verify -----------------------------------------------------------------------------------
def verify_store(store: EpisodeStore, quick: bool = False) -> VerifyReport:
    """Check ``store`` (open read-only); ``quick`` skips decoding image frames."""
    start = time.perf_counter()
    report = VerifyReport(store=str(store.root), quick=quick)
    _check_ends(store, report)
    _check_episode_records(store, report)
    tail = uncommitted_tail(store)
    if tail.present:
        report.warnings.append(f"uncommitted tail: {tail.describe()}")
    for key in store.array_keys():
        try:
            _check_key(store, key, report, quick)
        except Exception as exc:  # an unreadable array must not hide the other keys' problems
            report.problems.append(
                Problem(f"cannot be checked: {type(exc).__name__}: {exc}", key=key)
            )
    report.episodes_checked = store.n_episodes
    report.elapsed_s = time.perf_counter() - start
    return report


def _check_ends(store: EpisodeStore, report: VerifyReport) -> None:
    """episode_ends strictly increasing; entries past the commit are a tail or an inconsistency."""
    raw = raw_episode_ends(store)
    n = store.n_episodes
    records = raw_episode_records(store)
    main = [k for k in store.array_keys() if k not in store.async_streams]
    lengths = {k: min(store.array(k).shape[0], store.timestamps_array(k).shape[0]) for k in main}
    previous = int(store.episode_ends[-1]) if n else 0
    for i in range(n, len(raw)):
        end = int(raw[i])
        if end == L.ENDS_FILL:
            if i != len(raw) - 1:
                report.problems.append(Problem("meta/episode_ends has an unwritten slot", i))
            continue  # an interrupted commit: part of the tail
        if end <= previous:
            why = f"end {end} is not greater than the previous end {previous}"
        elif i >= len(records):
            why = f"end {end} is committed but the episode has no metadata record"
        else:
            short = {k: v for k, v in lengths.items() if v < end}
            why = (
                f"end {end} is committed but data is missing: "
                + ", ".join(f"{k!r} has {v} rows" for k, v in short.items())
                if short
                else f"end {end} is committed but an async stream's ends disagree"
            )
        report.problems.append(Problem(f"meta/episode_ends: {why}; readers ignore it", i))
        previous = max(previous, end)
    for key in store.async_streams:
        node = store.group[f"{L.STREAM_ENDS}/{key}"]
        assert isinstance(node, zarr.Array)
        ends = np.asarray(node[:], dtype=np.int64)
        if len(ends) < n:
            report.problems.append(
                Problem(f"meta/ends has {len(ends)} entries for {n} committed episodes", key=key)
            )
            continue
        rows = store.array(key).shape[0]
        prev = 0
        for i in range(n):
            if not prev <= int(ends[i]) <= rows:
                report.problems.append(
                    Problem(
                        f"meta/ends: end {int(ends[i])} is outside {prev}..{rows} "
                        "(previous end .. array length)",
                        i,
                        key,
                    )
                )
            prev = max(prev, int(ends[i]))


def _check_episode_records(store: EpisodeStore, report: VerifyReport) -> None:
    for i, meta in enumerate(store.episodes_meta()):
        missing = [f for f in REQUIRED_EPISODE_FIELDS if f not in meta]
        if missing:
            report.problems.append(Problem(f"metadata is missing fields {missing}", i))
        length = store.episode_length(i)
        if "length" in meta and meta["length"] != length:
            report.problems.append(
                Problem(f"metadata length {meta['length']} != {length} rows in episode_ends", i)
            )
        if "index" in meta and meta["index"] != i:
            report.problems.append(Problem(f"metadata index is {meta['index']}", i))
        if meta.get("success") not in (True, False, None):
            report.problems.append(Problem(f"success is {meta['success']!r}, not a bool/null", i))


def _check_key(store: EpisodeStore, key: str, report: VerifyReport, quick: bool) -> None:
    spec = store.features[key]
    arr, ts = store.array(key), store.timestamps_array(key)
    if tuple(arr.shape[1:]) != spec.shape or arr.dtype != np.dtype(spec.dtype):
        report.problems.append(
            Problem(
                f"array is {tuple(arr.shape[1:])}/{arr.dtype}, feature spec says "
                f"{spec.shape}/{spec.dtype}",
                key=key,
            )
        )
        return
    if ts.ndim != 1 or ts.dtype != np.float64:
        report.problems.append(
            Problem(f"timestamps are {ts.shape}/{ts.dtype}, not float64 rows", key=key)
        )
    if store.n_episodes == 0:
        return
    if key in store.async_streams:
        node = store.group[f"{L.STREAM_ENDS}/{key}"]
        assert isinstance(node, zarr.Array)
        ends = np.asarray(node[: store.n_episodes], dtype=np.int64)
    else:
        ends = store.episode_ends
    ends = np.maximum.accumulate(ends)  # out-of-order ends were reported by _check_ends
    n_rows = int(ends[-1])
    if arr.shape[0] < n_rows or ts.shape[0] < n_rows:
        report.problems.append(
            Problem(
                f"{arr.shape[0]} data / {ts.shape[0]} timestamp rows, fewer than the "
                f"{n_rows} committed",
                key=key,
            )
        )
        return
    _check_timestamps(key, ts, ends, report)
    if L.is_image(spec):
        _check_image_chunks(key, arr, ends, report, decode=not quick)
    else:
        _check_lowdim(key, arr, ends, report)
    report.rows_checked += n_rows


def _blocks(arr: zarr.Array, n_rows: int) -> list[tuple[int, int]]:
    """Row ranges aligned with the array's chunks (so one bad chunk fails one block)."""
    step = int(arr.chunks[0])
    return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


def _report_block(
    report: VerifyReport, key: str, ends: np.ndarray, lo: int, hi: int, message: str
) -> None:
    """A bad block of rows: one problem per episode it touches, with that episode's rows."""
    starts = np.concatenate([[0], ends[:-1]])
    for ep in range(int(episode_of_rows(ends, np.array([lo]))[0]), len(ends)):
        if starts[ep] >= hi:
            break
        a, b = max(lo, int(starts[ep])), min(hi, int(ends[ep]))
        if b > a:
            report.problems.append(Problem(f"rows {a}..{b - 1}: {message}", ep, key))


def _read_blocks(
    key: str,
    arr: zarr.Array,
    ends: np.ndarray,
    report: VerifyReport,
    what: str,
    check: Callable[[np.ndarray, int], None],
) -> None:
    for lo, hi in _blocks(arr, int(ends[-1])):
        try:
            block = np.asarray(arr[lo:hi])
        except Exception as exc:
            _report_block(report, key, ends, lo, hi, f"{what} chunk does not decode: {_err(exc)}")
            continue
        check(block, lo)


def _check_timestamps(key: str, ts: zarr.Array, ends: np.ndarray, report: VerifyReport) -> None:
    """Finite and non-decreasing within each episode (time may restart between episodes)."""
    previous: list[float] = []
    starts = set(np.concatenate([[0], ends[:-1]]).tolist())
    flagged: set[int] = set()

    def check(block: np.ndarray, lo: int) -> None:
        rows = np.arange(lo, lo + len(block))
        bad = rows[~np.isfinite(block)]
        full = np.concatenate([previous[-1:], block])
        diffs = np.diff(full)
        drow = rows[len(rows) - len(diffs) :]
        back = [int(r) for r, d in zip(drow, diffs) if d < 0 and int(r) not in starts]
        bad = np.concatenate([bad, back])
        for row in np.unique(bad).astype(int):
            ep = int(episode_of_rows(ends, np.array([row]))[0])
            if ep in flagged:
                continue
            flagged.add(ep)
            value = float(np.asarray(ts[row]))
            why = "not finite" if not np.isfinite(value) else "earlier than the previous row"
            report.problems.append(
                Problem(f"timestamp {value!r} is {why} (first such row)", ep, key, row)
            )
        previous[:] = block[-1:].tolist()

    _read_blocks(key, ts, ends, report, "timestamps", check)


def _check_lowdim(key: str, arr: zarr.Array, ends: np.ndarray, report: VerifyReport) -> None:
    def check(block: np.ndarray, lo: int) -> None:
        if block.dtype.kind != "f":
            return
        finite = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        seen: set[int] = set()
        for row in (np.flatnonzero(~finite) + lo).tolist():
            ep = int(episode_of_rows(ends, np.array([row]))[0])
            if ep not in seen:
                seen.add(ep)
                report.problems.append(
                    Problem("value is NaN or Inf (first such row)", ep, key, row)
                )

    _read_blocks(key, arr, ends, report, "blosc", check)


def _check_image_chunks(
    key: str, arr: zarr.Array, ends: np.ndarray, report: VerifyReport, decode: bool
) -> None:
    """Every committed frame has a chunk file, and (unless quick) every frame decodes."""
    present = existing_chunk_keys(arr)
    fmt = _codec_format(arr)
    starts = np.concatenate([[0], ends[:-1]])
    for ep, (start, stop) in enumerate(zip(starts.tolist(), ends.tolist())):
        for row in range(start, stop):
            if chunk_key(arr, row) not in present:
                report.problems.append(
                    Problem(
                        f"chunk file {chunk_key(arr, row)} is missing",
                        ep,
                        key,
                        row,
                    )
                )
        if not decode:
            continue
        for lo in range(start, stop, IMAGE_BLOCK_ROWS):
            hi = min(stop, lo + IMAGE_BLOCK_ROWS)
            try:
                arr[lo:hi]
                report.frames_decoded += hi - lo
                continue
            except Exception:
                pass
            for row in range(lo, hi):  # locate the bad frame(s) exactly
                try:
                    arr[row]
                    report.frames_decoded += 1
                except Exception as exc:
                    message = f"step {row - start}: {fmt} chunk does not decode: {_err(exc)}"
                    report.problems.append(Problem(message, ep, key, row))


def array_codecs(arr: zarr.Array) -> list[dict[str, Any]]:
    """The codec chain in the array's zarr metadata: ``[{"name", "configuration"}, ...]``."""
    meta = cast("dict[str, Any]", arr.metadata.to_dict())
    return [dict(c) for c in meta.get("codecs") or ()]


def image_codec_config(arr: zarr.Array) -> dict[str, Any]:
    """``{format, quality}`` of an image array's codec, or ``{}`` when it has none."""
    for codec in array_codecs(arr):
        if codec.get("name") == CODEC_ID:
            return dict(codec.get("configuration") or {})
    return {}


def _codec_format(arr: zarr.Array) -> str:
    return str(image_codec_config(arr).get("format", "image"))


def _err(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


__all__ = [
    "Problem",
    "TailReport",
    "VerifyReport",
    "array_codecs",
    "chunk_key",
    "committed_rows",
    "existing_chunk_keys",
    "image_codec_config",
    "raw_episode_ends",
    "raw_episode_records",
    "uncommitted_tail",
    "verify_store",
]

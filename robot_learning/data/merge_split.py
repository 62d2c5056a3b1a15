"""Merge episode stores, split one into train/val, or extract a subset: always into new stores.

Why copy chunks: re-encoding JPEG frames loses quality every generation and costs most of the
time, so encoded image chunks are copied byte for byte (through the zarr store API) whenever the
source and output arrays use the same codec configuration and chunking; otherwise the frames are
decoded and re-encoded, and the result says how many. Low-dim rows are small and rewritten.

Every episode is committed into the output exactly as a recorder would (rows first,
``episode_ends`` last), so a killed merge leaves a store whose committed episodes are intact.
Each output episode records where it came from in ``source`` (``<store>#<episode>``) and
``origin`` (store path, episode index, and the original ``source`` value).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from robot_learning.data import layout as L
from robot_learning.data.errors import StoreError
from robot_learning.data.store import EpisodeStore
from robot_learning.data.verify import array_codecs, image_codec_config

LOG = logging.getLogger(__name__)
COPY_BATCH = 256  # chunk copies in flight at once


class DatasetToolError(StoreError):
    """A merge/split/extract request that cannot be carried out (message says why)."""


@dataclass
class CopyStats:
    """What was written to one output store."""

    path: str
    episodes: int = 0
    steps: int = 0
    chunks_copied: int = 0
    frames_reencoded: int = 0
    source_episodes: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "episodes": self.episodes,
            "steps": self.steps,
            "chunks_copied": self.chunks_copied,
            "frames_reencoded": self.frames_reencoded,
            "source_episodes": [{"store": s, "episode": i} for s, i in self.source_episodes],
        }


# ---- compatibility ------------------------------------------------------------------------------
def check_same_layout(first: EpisodeStore, other: EpisodeStore) -> None:
    """Raise naming the first feature (or store setting) that differs between two stores."""
    a, b = first.features.to_json(), other.features.to_json()
    for name in [*a, *(k for k in b if k not in a)]:
        if a.get(name) != b.get(name):
            raise DatasetToolError(
                f"feature {name!r} differs: {first.root} has {a.get(name) or 'no such feature'}, "
                f"{other.root} has {b.get(name) or 'no such feature'}"
            )
    for what, x, y in (
        ("roles", first.roles, other.roles),
        ("async streams", sorted(first.async_streams), sorted(other.async_streams)),
        ("fps", first.fps, other.fps),
    ):
        if x != y:
            raise DatasetToolError(f"{what} differ: {first.root} has {x}, {other.root} has {y}")


def image_encoding(store: EpisodeStore) -> tuple[str, int]:
    """(format, quality) of the store's rgb arrays, read from their zarr codec metadata."""
    for key in store.array_keys():
        if store.features[key].kind == "rgb":
            config = image_codec_config(store.array(key))
            return str(config.get("format", L.DEFAULT_IMAGE_FORMAT)), int(
                config.get("quality", L.DEFAULT_IMAGE_QUALITY)
            )
    return L.DEFAULT_IMAGE_FORMAT, L.DEFAULT_IMAGE_QUALITY


def _same_encoding(src: zarr.Array, dst: zarr.Array) -> bool:
    """Chunks can be copied byte for byte: same codecs, one frame per chunk, same key scheme."""
    return (
        array_codecs(src) == array_codecs(dst)
        and src.chunks == dst.chunks
        and src.chunks[0] == 1
        and getattr(src.metadata, "chunk_key_encoding", None)
        == getattr(dst.metadata, "chunk_key_encoding", None)
        and src.dtype == dst.dtype
    )


# ---- creating outputs ---------------------------------------------------------------------------
def create_like(
    template: EpisodeStore, out: str | Path, *, overwrite: bool, derived: dict[str, Any]
) -> EpisodeStore:
    """A new, empty store with ``template``'s features, roles, fps and image encoding."""
    fmt, quality = image_encoding(template)
    return EpisodeStore.create(
        out,
        template.features,
        actions=[k for k, role in template.roles.items() if role == "action"],
        fps=template.fps,
        robot=template.robot,
        async_streams=template.async_streams,
        image_format=fmt,
        image_quality=quality,
        overwrite=overwrite,
        extra_attrs={"derived_from": derived},
    )


def _check_outputs(outs: Sequence[Path], sources: Sequence[Path], overwrite: bool) -> None:
    resolved = [p.resolve() for p in outs]
    if len(set(resolved)) != len(resolved):
        raise DatasetToolError(f"output paths must differ, got {[str(p) for p in outs]}")
    src = {p.resolve() for p in sources}
    for out in outs:
        if out.resolve() in src:
            raise DatasetToolError(f"output {out} is also a source store; choose a new path")
        if any(out.resolve().is_relative_to(s) or s.is_relative_to(out.resolve()) for s in src):
            raise DatasetToolError(f"output {out} is inside (or contains) a source store")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            if not overwrite:
                raise DatasetToolError(f"{out} already exists and is not empty: pass --overwrite")
            if not (out / "zarr.json").is_file():
                raise DatasetToolError(
                    f"{out} is not an episode store; --overwrite only replaces an existing store"
                )


# ---- copying episodes ---------------------------------------------------------------------------
def copy_episode(src: EpisodeStore, index: int, dst: EpisodeStore, stats: CopyStats) -> int:
    """Append episode ``index`` of ``src`` to ``dst`` and commit it; returns its new index."""
    n_steps = src.episode_length(index)
    main_rows: dict[str, np.ndarray] = {}
    main_times: dict[str, np.ndarray] = {}
    async_rows: dict[str, np.ndarray] = {}
    async_times: dict[str, np.ndarray] = {}
    copied: dict[str, int] = {}
    for key in src.array_keys():
        start, stop = src.episode_range(index, key)
        is_async = key in src.async_streams
        times = np.asarray(src.timestamps_array(key)[start:stop], dtype=np.float64)
        (async_times if is_async else main_times)[key] = times
        s_arr, d_arr = src.array(key), dst.array(key)
        if L.is_image(src.features[key]) and _same_encoding(s_arr, d_arr):
            base = _next_row(dst, key)
            stats.chunks_copied += _copy_chunks(s_arr, d_arr, start, stop, base)
            copied[key] = stop - start
            continue
        rows = src._read(key, index, s_arr, start, stop)
        if L.is_image(src.features[key]):
            stats.frames_reencoded += len(rows)
        (async_rows if is_async else main_rows)[key] = rows
    meta = src.episode_meta(index)
    new_index = dst.n_episodes
    origin = {"store": str(src.root.resolve()), "episode": index, "source": meta.get("source", "")}
    meta.update(index=new_index, length=n_steps, source=f"{src.root}#{index}", origin=origin)
    dst._append_commit(main_rows, main_times, async_rows, async_times, n_steps, meta, copied)
    stats.episodes += 1
    stats.steps += n_steps
    stats.source_episodes.append((str(src.root), index))
    return new_index


def _next_row(dst: EpisodeStore, key: str) -> int:
    if key in dst.async_streams:
        return dst.episode_range(-1, key)[1] if dst.n_episodes else 0
    return dst.n_steps


def _copy_chunks(src: zarr.Array, dst: zarr.Array, start: int, stop: int, base: int) -> int:
    """Copy the encoded chunks of rows ``start..stop`` to rows ``base..`` of ``dst``."""
    zeros = (0,) * (src.ndim - 1)
    pairs = [
        (
            f"{src.path}/{src.metadata.encode_chunk_key((row, *zeros))}",
            f"{dst.path}/{dst.metadata.encode_chunk_key((base + row - start, *zeros))}",
        )
        for row in range(start, stop)
    ]
    proto = default_buffer_prototype()

    async def one(src_key: str, dst_key: str) -> int:
        buf = await src.store.get(src_key, prototype=proto)
        if buf is None:  # zarr skipped writing an all-zero frame: the copy reads the same
            return 0
        await dst.store.set(dst_key, buf)
        return 1

    async def run() -> int:
        done = 0
        for i in range(0, len(pairs), COPY_BATCH):
            done += sum(await asyncio.gather(*(one(a, b) for a, b in pairs[i : i + COPY_BATCH])))
        return done

    return sync(run())


def _write_store(
    out: Path,
    template: EpisodeStore,
    picks: Sequence[tuple[EpisodeStore, int]],
    overwrite: bool,
    derived: dict[str, Any],
) -> CopyStats:
    """Create ``out`` and copy ``picks`` into it in order; a failure removes the new store."""
    stats = CopyStats(path=str(out))
    dst = create_like(template, out, overwrite=overwrite, derived=derived)
    try:
        for src, index in picks:
            copy_episode(src, index, dst, stats)
            LOG.debug("%s: copied %s episode %d", out, src.root, index)
    except BaseException:
        dst.close()
        shutil.rmtree(out, ignore_errors=True)
        raise
    dst.close()
    if stats.frames_reencoded:
        LOG.info("%s: re-encoded %d frame(s) (codec differs)", out, stats.frames_reencoded)
    return stats


# ---- the three tools ----------------------------------------------------------------------------
def merge_stores(
    out: str | Path, sources: Sequence[str | Path], *, overwrite: bool = False
) -> CopyStats:
    """All committed episodes of ``sources``, in order, into a new store at ``out``."""
    if len(sources) < 1:
        raise DatasetToolError("merge needs at least one source store")
    out_p, src_p = Path(out), [Path(s) for s in sources]
    _check_outputs([out_p], src_p, overwrite)
    stores = [EpisodeStore.open(p, "r") for p in src_p]
    for other in stores[1:]:
        check_same_layout(stores[0], other)
    picks = [(s, i) for s in stores for i in range(s.n_episodes)]
    derived = {"operation": "merge", "sources": [str(p.resolve()) for p in src_p]}
    return _write_store(out_p, stores[0], picks, overwrite, derived)


def extract_episodes(
    source: str | Path, out: str | Path, episodes: Sequence[int], *, overwrite: bool = False
) -> CopyStats:
    """Episodes ``episodes`` of ``source`` (in the order given) into a new store at ``out``."""
    src_p, out_p = Path(source), Path(out)
    _check_outputs([out_p], [src_p], overwrite)
    src = EpisodeStore.open(src_p, "r")
    _check_indices(episodes, src.n_episodes)
    derived = {"operation": "extract", "source": str(src_p.resolve()), "episodes": list(episodes)}
    return _write_store(out_p, src, [(src, i) for i in episodes], overwrite, derived)


def split_store(
    source: str | Path,
    out_train: str | Path,
    out_val: str | Path,
    *,
    val_fraction: float | None = None,
    val_episodes: Sequence[int] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> tuple[CopyStats, CopyStats]:
    """Deterministic train/val split of ``source`` into two new stores (source untouched)."""
    src_p, train_p, val_p = Path(source), Path(out_train), Path(out_val)
    _check_outputs([train_p, val_p], [src_p], overwrite)
    src = EpisodeStore.open(src_p, "r")
    val = choose_val_episodes(src.n_episodes, val_fraction, val_episodes, seed)
    val_set = set(val)
    train = [i for i in range(src.n_episodes) if i not in val_set]
    common = {"operation": "split", "source": str(src_p.resolve()), "seed": seed}
    train_stats = _write_store(
        train_p, src, [(src, i) for i in train], overwrite, {**common, "part": "train"}
    )
    try:
        val_stats = _write_store(
            val_p, src, [(src, i) for i in val], overwrite, {**common, "part": "val"}
        )
    except BaseException:
        shutil.rmtree(train_p, ignore_errors=True)
        raise
    return train_stats, val_stats


def choose_val_episodes(
    n: int, fraction: float | None, episodes: Sequence[int] | None, seed: int
) -> list[int]:
    """Sorted validation indices: the given ones, or ``round(n * fraction)`` drawn with ``seed``."""
    if (fraction is None) == (episodes is None):
        raise DatasetToolError("give exactly one of a validation fraction or validation episodes")
    if n < 2:
        raise DatasetToolError(f"a train/val split needs at least 2 episodes; the store has {n}")
    if episodes is not None:
        _check_indices(episodes, n)
        val = sorted(set(episodes))
    else:
        assert fraction is not None
        if not 0.0 < fraction < 1.0:
            raise DatasetToolError(f"the validation fraction must be in (0, 1), got {fraction}")
        k = min(n - 1, max(1, round(n * fraction)))
        val = sorted(np.random.default_rng(seed).permutation(n)[:k].tolist())
    if len(val) >= n:
        raise DatasetToolError("every episode would go to validation; leave some for training")
    return val


def _check_indices(episodes: Sequence[int], n: int) -> None:
    if not episodes:
        raise DatasetToolError("no episodes selected")
    bad = [i for i in episodes if not 0 <= i < n]
    if bad:
        raise DatasetToolError(f"episode(s) {bad} do not exist; valid indices are 0..{n - 1}")
    if len(set(episodes)) != len(episodes):
        raise DatasetToolError(f"episode indices repeat: {list(episodes)}")


def parse_episode_selection(text: str, n: int) -> list[int]:
    """``"0:10"``, ``"3,7,9"``, ``"5:"``, ``":-2"``, ``"0:4,9"`` -> indices (Python slices)."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if ":" in part:
                bits = [int(b) if b.strip() else None for b in part.split(":")]
                if len(bits) > 3:
                    raise ValueError
                out.extend(range(n)[slice(*bits)])
            else:
                i = int(part)
                out.append(i + n if i < 0 else i)
        except ValueError:
            raise DatasetToolError(
                f"bad episode selection {part!r}: use indices and ranges like 0:10,15,20:"
            ) from None
    if not out:
        raise DatasetToolError(f"episode selection {text!r} selects nothing (store has {n})")
    return out


__all__ = [
    "CopyStats",
    "DatasetToolError",
    "check_same_layout",
    "choose_val_episodes",
    "copy_episode",
    "extract_episodes",
    "merge_stores",
    "parse_episode_selection",
    "split_store",
]

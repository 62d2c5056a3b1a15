"""Export one stored episode to a Rerun recording (``.rrd``) for frame-by-frame inspection.

Why Rerun: an mp4 shows the cameras, but debugging a demonstration also needs the joint
trajectories, the actions and the tactile readings on one time axis. Every stream is logged on
its own stored timestamps (timeline ``time``, sensor clock in seconds) and on its row index within
the episode (timeline ``step``), so async streams line up with the cameras exactly as recorded.
JPEG/PNG frames are logged as their stored encoded bytes (no re-encoding, small files).

``rerun-sdk`` is optional: without it :func:`export_rerun` raises :class:`RerunUnavailableError`
saying what to install.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from robot_learning.data import layout as L
from robot_learning.data.errors import StoreError
from robot_learning.data.store import EpisodeStore
from robot_learning.data.verify import image_codec_config

LOG = logging.getLogger(__name__)
APPLICATION_ID = "robot_learning_dataset"
_MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


class RerunUnavailableError(StoreError):
    """rerun-sdk is not installed (it is optional: ``pip install rerun-sdk``)."""


def _import_rerun() -> Any:
    try:
        import rerun as rr
    except ImportError as exc:
        raise RerunUnavailableError(
            "--rerun needs the optional rerun-sdk package: pip install rerun-sdk "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return rr


def export_rerun(
    store: EpisodeStore, episode: int, out: str | Path, *, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """Write episode ``episode`` of ``store`` to ``out`` (.rrd); ``keys`` limits the streams."""
    rr = _import_rerun()
    path = Path(out)
    if path.suffix.lower() != ".rrd":
        raise StoreError(f"rerun output must be an .rrd file, got {str(path)!r}")
    available = store.array_keys()
    chosen = list(keys) if keys is not None else available
    bad = [k for k in chosen if k not in available]
    if bad:
        raise StoreError(f"no stored features {bad} in {store.root}; valid: {available}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = store.episode_meta(episode)
    rec = rr.RecordingStream(APPLICATION_ID, recording_id=f"{store.root.name}-episode-{episode}")
    rec.save(str(path))
    rec.log("episode/meta", rr.TextDocument(json.dumps(meta, indent=1, default=str)), static=True)
    if meta.get("instruction"):
        rec.log("episode/instruction", rr.TextDocument(str(meta["instruction"])), static=True)
    rows = 0
    for key in chosen:
        start, stop = store.episode_range(episode, key)
        times = np.asarray(store.timestamps_array(key)[start:stop], dtype=np.float64)
        entity = f"{store.roles.get(key, 'observation')}/{key}"
        spec = store.features[key]
        if L.is_image(spec):
            _log_images(rr, rec, store, episode, key, entity, start, times)
        else:
            data = store._read(key, episode, store.array(key), start, stop)
            if spec.kind == "tactile" and data.ndim > 2:
                for step, t in enumerate(times):
                    _set_time(rec, float(t), step)
                    rec.log(entity, rr.Tensor(data[step]))
            else:
                rec.send_columns(
                    entity,
                    indexes=[
                        rr.TimeColumn("time", duration=times),
                        rr.TimeColumn("step", sequence=np.arange(len(times))),
                    ],
                    columns=rr.Scalars.columns(
                        scalars=data.reshape(len(data), -1).astype(np.float64)
                    ),
                )
        rows += stop - start
    rec.flush()
    rec.disconnect()
    LOG.info("wrote %s (%d rows of %d streams)", path, rows, len(chosen))
    return {"path": str(path), "episode": episode, "keys": chosen, "rows": rows}


def _set_time(rec: Any, t: float, step: int) -> None:
    rec.set_time("time", duration=t)
    rec.set_time("step", sequence=step)


def _log_images(
    rr: Any,
    rec: Any,
    store: EpisodeStore,
    episode: int,
    key: str,
    entity: str,
    start: int,
    times: np.ndarray,
) -> None:
    arr = store.array(key)
    fmt = str(image_codec_config(arr).get("format", ""))
    encoded = fmt in _MEDIA_TYPES and arr.chunks[0] == 1
    for step, t in enumerate(times):
        _set_time(rec, float(t), step)
        blob = _encoded_frame(arr, start + step) if encoded else None
        if blob is not None:
            rec.log(entity, rr.EncodedImage(contents=blob, media_type=_MEDIA_TYPES[fmt]))
            continue
        frame = store._read(key, episode, arr, start + step, start + step + 1)[0]
        if store.features[key].kind == "depth":
            rec.log(entity, rr.DepthImage(frame))
        else:
            rec.log(entity, rr.Image(frame))


def _encoded_frame(arr: Any, row: int) -> bytes | None:
    """The stored image bytes of one single-frame chunk (``u32 count, u32 len, image``)."""
    zeros = (0,) * (arr.ndim - 1)
    key = f"{arr.path}/{arr.metadata.encode_chunk_key((row, *zeros))}"
    buf = sync(arr.store.get(key, prototype=default_buffer_prototype()))
    if buf is None:
        return None
    raw = buf.to_bytes()
    try:
        count, length = struct.unpack_from("<II", raw, 0)
    except struct.error:
        return None
    if count != 1 or 8 + length > len(raw):
        return None
    return bytes(raw[8 : 8 + length])


__all__ = ["APPLICATION_ID", "RerunUnavailableError", "export_rerun"]

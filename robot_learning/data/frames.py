"""``FrameReader``: read single image frames of a store without zarr's per-call overhead.

Why: a training window needs a handful of frames scattered over an episode. Through zarr's
indexing each read costs an event-loop round trip (~1 ms); reading the chunk file (one frame per
chunk) and decoding it with the image codec directly costs ~0.1 ms at 96x96, which is what keeps
training from waiting on data. Stores that are not plain local directories with one frame per
chunk fall back to zarr indexing, so correctness never depends on the fast path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from robot_learning.data.codecs import ImageCodec
from robot_learning.data.errors import StoreCorruptError


class FrameReader:
    """Reads rows of one image array (``data/<key>``) by index."""

    def __init__(self, array: zarr.Array, root: Path | None, key: str) -> None:
        self.array = array
        self.key = key
        self.shape = tuple(array.shape[1:])
        self.dtype = np.dtype(array.dtype)
        codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
        serializer = next((c for c in codecs if isinstance(c, ImageCodec)), None)
        one_frame_chunks = tuple(array.chunks) == (1, *self.shape)
        self._codec = serializer if (serializer and one_frame_chunks and len(codecs) == 1) else None
        self._dir = root / array.path if root is not None else None
        if self._dir is not None and not self._dir.is_dir():
            self._dir = None

    @property
    def fast(self) -> bool:
        return self._codec is not None and self._dir is not None

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Frames at ``rows`` (any order, repeats allowed), shape ``(len(rows), *frame)``."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.fast:
            unique, inverse = np.unique(rows, return_inverse=True)
            block = np.asarray(self.array.get_orthogonal_selection((unique,)))
            return block[inverse]
        out = np.empty((len(rows), *self.shape), dtype=self.dtype)
        decoded: dict[int, np.ndarray] = {}
        for i, row in enumerate(rows.tolist()):
            frame = decoded.get(row)
            if frame is None:
                frame = decoded[row] = self._read_one(row)
            out[i] = frame
        return out

    def _read_one(self, row: int) -> np.ndarray:
        assert self._codec is not None and self._dir is not None
        chunk_key = self.array.metadata.encode_chunk_key((row,) + (0,) * len(self.shape))
        path = self._dir / chunk_key
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(
                f"key {self.key!r} row {row}: chunk file {path} is missing"
            ) from None
        try:
            return self._codec.decode_chunk(blob, (1, *self.shape), self.dtype)[0]
        except Exception as exc:
            raise StoreCorruptError(
                f"key {self.key!r} row {row}: frame does not decode: {exc}"
            ) from exc

"""Image codecs for zarr v3: each chunk of frames is stored as JPEG, JPEG-XL or PNG.

Why: zarr v3 has no image codec, and storing camera frames raw costs ~30x the disk and I/O of
JPEG at q90 (~44 dB on rendered frames), while video codecs make random access slow (LeRobot's
training waits on video decoding). An image codec per chunk keeps every frame independently
decodable, so the sampler reads exactly the frames a window uses.

The codec is a zarr ``ArrayBytesCodec`` registered under :data:`CODEC_ID` when this module is
imported (``import robot_learning.data`` does it), so the codec id and its configuration live in
each array's ``zarr.json`` and any reader with this package installed opens the store.

Chunk encoding: ``u32 frame count`` then, per frame, ``u32 byte length`` + the encoded image.
Formats: ``jpeg`` (lossy, rgb uint8), ``jpegxl`` (lossy or lossless when ``quality`` is 100 and
the build supports it), ``png`` (lossless; rgb uint8 and depth uint16).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import imagecodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec

CODEC_ID = "robot_learning.image"
IMAGE_FORMATS: tuple[str, ...] = ("jpeg", "jpegxl", "png")
LOSSLESS_FORMATS: tuple[str, ...] = ("png",)
_U32 = struct.Struct("<I")


class ImageCodecError(ValueError):
    """An image codec was configured for data it cannot hold, or a chunk does not decode."""


def available_formats() -> list[str]:
    """The image formats this imagecodecs build can both encode and decode."""
    names = {"jpeg": "JPEG8", "jpegxl": "JPEGXL", "png": "PNG"}
    out = []
    for fmt in IMAGE_FORMATS:
        codec = getattr(imagecodecs, names[fmt], None)
        if codec is not None and getattr(codec, "available", False):
            out.append(fmt)
    return out


def _check_frame_shape(shape: tuple[int, ...], dtype: np.dtype[Any], fmt: str) -> None:
    """Frames are (H, W, 3) uint8 colour or (H, W) uint8/uint16 single-channel images."""
    frame = shape[1:]
    if (len(frame) == 3 and frame[-1] in (1, 3)) or len(frame) == 2:
        pass
    else:
        raise ImageCodecError(
            f"image codec {fmt!r} stores chunks of (H, W, 3) or (H, W) frames; got chunk shape "
            f"{shape}"
        )
    if dtype == np.uint16 and fmt != "png":
        raise ImageCodecError(
            f"uint16 images (depth) need a lossless 16-bit format: use 'png', not {fmt!r}"
        )
    if dtype not in (np.uint8, np.uint16):
        raise ImageCodecError(f"image codec stores uint8/uint16 frames, got dtype {dtype}")


@dataclass(frozen=True)
class ImageCodec(ArrayBytesCodec):
    """Encode each frame of a chunk ``(T, H, W[, C])`` as one image; the time axis comes first."""

    is_fixed_size = False

    format: str = "jpeg"
    quality: int = 90

    def __init__(self, *, format: str = "jpeg", quality: int = 90) -> None:
        if format not in IMAGE_FORMATS:
            raise ImageCodecError(
                f"unknown image format {format!r}; valid formats: {', '.join(IMAGE_FORMATS)}"
            )
        if format not in available_formats():
            raise ImageCodecError(
                f"image format {format!r} is not available in this imagecodecs build; "
                f"available: {', '.join(available_formats())}"
            )
        if not 1 <= int(quality) <= 100:
            raise ImageCodecError(f"image quality must be in 1..100, got {quality}")
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "quality", int(quality))

    @property
    def lossless(self) -> bool:
        return self.format in LOSSLESS_FORMATS or (self.format == "jpegxl" and self.quality == 100)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        config = dict(data.get("configuration") or {})
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_ID, "configuration": {"format": self.format, "quality": self.quality}}

    def validate(self, *, shape: Any, dtype: Any, chunk_grid: Any) -> None:
        chunk_shape = tuple(getattr(chunk_grid, "chunk_shape", shape))
        _check_frame_shape(chunk_shape, np.dtype(dtype.to_native_dtype()), self.format)

    # ---- per-frame image encode/decode ---------------------------------------------------------
    def encode_frame(self, frame: np.ndarray) -> bytes:
        frame = np.ascontiguousarray(frame)
        if frame.ndim == 3 and frame.shape[-1] == 1:
            frame = frame[..., 0]
        if self.format == "jpeg":
            return bytes(imagecodecs.jpeg8_encode(frame, level=self.quality))
        if self.format == "jpegxl":
            if self.quality == 100:
                return bytes(imagecodecs.jpegxl_encode(frame, lossless=True))
            return bytes(imagecodecs.jpegxl_encode(frame, level=self.quality))
        return bytes(imagecodecs.png_encode(frame, level=1))

    def decode_frame(self, data: bytes) -> np.ndarray:
        if self.format == "jpeg":
            return np.asarray(imagecodecs.jpeg8_decode(data))
        if self.format == "jpegxl":
            return np.asarray(imagecodecs.jpegxl_decode(data))
        return np.asarray(imagecodecs.png_decode(data))

    # ---- zarr codec interface ------------------------------------------------------------------
    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        frames = np.asarray(chunk_array.as_numpy_array())
        parts = [_U32.pack(frames.shape[0])]
        for frame in frames:
            blob = self.encode_frame(frame)
            parts.append(_U32.pack(len(blob)))
            parts.append(blob)
        payload = np.frombuffer(b"".join(parts), dtype=np.uint8)
        return chunk_spec.prototype.buffer.from_array_like(payload)

    def decode_chunk(self, raw: bytes, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """Decode one stored chunk (the bytes of a chunk file) into ``shape``/``dtype`` frames."""
        view = memoryview(raw)
        try:
            (count,) = _U32.unpack_from(view, 0)
            if count != shape[0]:
                raise ImageCodecError(f"chunk holds {count} frames, its shape says {shape[0]}")
            out = np.empty(shape, dtype=dtype)
            offset = _U32.size
            for i in range(count):
                (length,) = _U32.unpack_from(view, offset)
                offset += _U32.size
                if offset + length > len(view):
                    raise ImageCodecError("chunk is truncated")
                frame = self.decode_frame(bytes(view[offset : offset + length]))
                out[i] = frame.reshape(shape[1:])
                offset += length
        except ImageCodecError:
            raise
        except (struct.error, ValueError, RuntimeError) as exc:
            raise ImageCodecError(f"{self.format} chunk does not decode: {exc}") from exc
        return out

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        out = self.decode_chunk(
            chunk_bytes.to_bytes(), tuple(chunk_spec.shape), chunk_spec.dtype.to_native_dtype()
        )
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(out)  # type: ignore[arg-type]

    # imagecodecs releases the GIL: run off zarr's event loop so chunks encode in parallel
    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("image-coded chunks have a data-dependent size")


register_codec(CODEC_ID, ImageCodec)

__all__ = ["CODEC_ID", "IMAGE_FORMATS", "ImageCodec", "ImageCodecError", "available_formats"]

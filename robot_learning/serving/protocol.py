"""Wire format of the policy server: msgpack maps with numpy arrays as a msgpack extension.

Why this format: msgpack is compact, fast in C, has clients in every language, and unlike pickle
decoding it cannot run code. Arrays travel as extension type 1 whose payload is the msgpack of
``[dtype.str, [shape...], raw bytes]``, so a non-Python client can build them by hand. Decoding
is defensive, because the server reads bytes from the network: only plain little-endian numeric
dtypes, at most :data:`MAX_NDIM` dimensions, a byte count that must match the declared shape, and
every failure is a :class:`ProtocolError` (never an object array, never a crash). Decoded arrays
are read-only views into the received payload (no copy).
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
ARRAY_EXT_CODE = 1
MAX_NDIM = 8
# little-endian ("<") or byte-order-free ("|") plain numeric dtypes; nothing else decodes
ALLOWED_DTYPES: frozenset[str] = frozenset(
    ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<i8", "<f2", "<f4", "<f8"]
)
ERROR_CODES: tuple[str, ...] = (
    "bad_message",
    "bad_request",
    "unknown_policy",
    "spec_mismatch",
    "overloaded",
    "internal",
)
# the header of an array payload (fixarray, dtype str, <= 8 dims, bin header) fits in this
_HEADER_PEEK = 128
_BIN_HEADERS = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8 / bin16 / bin32: width of the length field

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 10


class ProtocolError(ValueError):
    """Bytes that are not a valid message of this protocol; the message says what is wrong."""


def short_repr(value: Any) -> str:
    """A bounded ``repr`` for error messages (peers may send huge or deeply nested values)."""
    return _short.repr(value)


def _wire_array(arr: np.ndarray) -> np.ndarray:
    """The array as it goes on the wire: an allowed dtype, C-contiguous."""
    dtype = arr.dtype
    if dtype.str not in ALLOWED_DTYPES:
        little = dtype.newbyteorder("<") if dtype.byteorder == ">" else None
        if little is None or little.str not in ALLOWED_DTYPES:
            raise ProtocolError(
                f"cannot send an array of dtype {dtype.str!r} ({dtype}); allowed dtypes: "
                f"{', '.join(sorted(ALLOWED_DTYPES))}"
            )
        arr = arr.astype(little)  # big-endian input: same values, little-endian bytes
    if arr.ndim > MAX_NDIM:
        raise ProtocolError(f"cannot send an array with {arr.ndim} dimensions; at most {MAX_NDIM}")
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        arr = _wire_array(obj)
        data = arr.reshape(-1).data.cast("B")  # packed straight from the array's memory
        payload = msgpack.packb([arr.dtype.str, list(arr.shape), data], use_bin_type=True)
        return msgpack.ExtType(ARRAY_EXT_CODE, payload)
    if isinstance(obj, np.generic):
        return obj.item()
    raise ProtocolError(f"cannot encode a value of type {type(obj).__name__}: {short_repr(obj)}")


def pack(message: Any) -> bytes:
    """Encode a message (maps, lists, str, numbers, bytes, numpy arrays and scalars)."""
    try:
        return msgpack.packb(message, default=_default, use_bin_type=True)
    except ProtocolError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"cannot encode the message: {exc}") from None


def _decode_array(payload: bytes) -> np.ndarray:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=_HEADER_PEEK)
    unpacker.feed(payload[:_HEADER_PEEK])
    try:
        if unpacker.read_array_header() != 3:
            raise ProtocolError("an array payload must be [dtype, shape, bytes]")
        dtype_str = unpacker.unpack()
        shape = unpacker.unpack()
        offset = unpacker.tell()
    except ProtocolError:
        raise
    except Exception:  # OutOfData, FormatError, StackError, ...
        raise ProtocolError(
            f"malformed array header (expected [dtype, shape, bytes] with at most {MAX_NDIM} "
            "dimensions)"
        ) from None
    if not isinstance(dtype_str, str) or dtype_str not in ALLOWED_DTYPES:
        raise ProtocolError(
            f"array dtype {short_repr(dtype_str)} is not allowed; allowed dtypes: "
            f"{', '.join(sorted(ALLOWED_DTYPES))} (little-endian plain numbers only)"
        )
    if not isinstance(shape, list):
        raise ProtocolError(f"array shape must be a list of integers, got {short_repr(shape)}")
    if len(shape) > MAX_NDIM:
        raise ProtocolError(f"array has {len(shape)} dimensions; at most {MAX_NDIM} are allowed")
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise ProtocolError(f"array shape must hold integers >= 0, got {short_repr(shape)}")
    dtype = np.dtype(dtype_str)
    expected = math.prod(shape) * dtype.itemsize
    if offset >= len(payload) or payload[offset] not in _BIN_HEADERS:
        raise ProtocolError("array data must be msgpack bin (bytes) after dtype and shape")
    width = _BIN_HEADERS[payload[offset]]
    start = offset + 1 + width
    size = int.from_bytes(payload[offset + 1 : start], "big")
    if size != len(payload) - start:
        raise ProtocolError(
            f"array data holds {len(payload) - start} bytes but its header says {size}"
        )
    if size != expected:
        raise ProtocolError(
            f"array of shape {tuple(shape)} and dtype {dtype_str} needs {expected} bytes, "
            f"got {size}"
        )
    if expected == 0:
        empty = np.empty(shape, dtype=dtype)
        empty.flags.writeable = False
        return empty
    arr = np.frombuffer(payload, dtype=dtype, count=math.prod(shape), offset=start)
    if dtype.kind == "b" and int(arr.view(np.uint8).max()) > 1:
        raise ProtocolError("bool array holds bytes other than 0 and 1")
    return arr.reshape(shape)


def _ext_hook(code: int, payload: bytes) -> Any:
    if code != ARRAY_EXT_CODE:
        raise ProtocolError(
            f"unknown msgpack extension type {code}; only {ARRAY_EXT_CODE} (numpy array)"
        )
    return _decode_array(payload)


def unpack(data: bytes) -> Any:
    """Decode one message; raises :class:`ProtocolError` on anything malformed."""
    try:
        return msgpack.unpackb(
            data, ext_hook=_ext_hook, raw=False, strict_map_key=True, use_list=True
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types (ExtraData, StackError, ...)
        raise ProtocolError(f"not a valid msgpack message ({type(exc).__name__}: {exc})") from None


def error_message(request_id: Any, code: str, message: str) -> dict[str, Any]:
    """An error reply; ``request_id`` is echoed only when it is a valid id."""
    rid = request_id if type(request_id) is int else None
    return {"type": "error", "id": rid, "code": code, "message": message}


__all__ = [
    "ALLOWED_DTYPES",
    "ARRAY_EXT_CODE",
    "ERROR_CODES",
    "MAX_NDIM",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "error_message",
    "pack",
    "short_repr",
    "unpack",
]

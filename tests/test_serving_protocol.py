"""Wire protocol of the policy server: array round trips and refusal of malformed bytes."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from robot_learning.serving.protocol import (
    ALLOWED_DTYPES,
    ARRAY_EXT_CODE,
    MAX_NDIM,
    ProtocolError,
    pack,
    unpack,
)

SHAPES = [(), (0,), (1,), (5,), (2, 3), (0, 4), (2, 1, 3), (1, 2, 1, 2, 1, 2, 1, 2)]


def array_ext(dtype: str, shape: object, data: bytes) -> bytes:
    """A message carrying one hand-built array extension (bypassing the encoder's checks)."""
    payload = msgpack.packb([dtype, shape, data], use_bin_type=True)
    return msgpack.packb({"x": msgpack.ExtType(ARRAY_EXT_CODE, payload)}, use_bin_type=True)


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_allowed_dtype_and_shape_round_trips(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2 if dtype == "|b1" else 100, size=shape)
    arr = values.astype(np.dtype(dtype))
    out = unpack(pack({"type": "t", "a": arr, "nested": [arr]}))
    for got in (out["a"], out["nested"][0]):
        assert isinstance(got, np.ndarray)
        assert got.dtype == arr.dtype and got.dtype.str == dtype
        assert got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
        assert not got.flags.writeable  # a read-only view into the received bytes


def test_non_contiguous_and_big_endian_inputs_are_sent_as_plain_arrays() -> None:
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    for arr in (base[:, ::2], base.T, base.astype(">f4")):
        got = unpack(pack(arr))
        assert got.dtype.str == "<f4"
        np.testing.assert_array_equal(got, arr)


def test_scalars_strings_and_nesting_round_trip() -> None:
    msg = {"type": "x", "id": 7, "s": "héllo", "f": np.float32(1.5), "l": [1, 2.5, None, True]}
    assert unpack(pack(msg)) == {**msg, "f": 1.5}


@pytest.mark.parametrize(
    "arr",
    [np.array([object(), 1], dtype=object), np.zeros(3, np.complex64), np.zeros(2, "U3")],
    ids=["object", "complex", "unicode"],
)
def test_encoder_refuses_disallowed_dtypes(arr: np.ndarray) -> None:
    with pytest.raises(ProtocolError, match="dtype"):
        pack({"a": arr})


def test_encoder_refuses_too_many_dimensions_and_unknown_types() -> None:
    with pytest.raises(ProtocolError, match="dimensions"):
        pack(np.zeros((1,) * (MAX_NDIM + 1), np.float32))
    with pytest.raises(ProtocolError, match="set"):
        pack({"a": {1, 2}})


@pytest.mark.parametrize(
    ("dtype", "match"),
    [("|O", "not allowed"), ("<c8", "not allowed"), (">f4", "not allowed"), ("<U3", "not allowed")],
)
def test_decoder_refuses_disallowed_dtypes(dtype: str, match: str) -> None:
    itemsize = np.dtype(dtype).itemsize
    with pytest.raises(ProtocolError, match=match):
        unpack(array_ext(dtype, [2], b"\0" * (2 * itemsize)))


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes", "match"),
    [
        ("<f4", [2, 3], 20, "needs 24 bytes, got 20"),
        ("<f4", [2, 3], 28, "needs 24 bytes, got 28"),
        ("|u1", [10**9, 10**9], 8, "needs"),  # huge declared shape, tiny payload
        ("<f4", [1] * (MAX_NDIM + 1), 4, "dimensions"),
        ("<f4", [-1], 4, "integers >= 0"),
        ("<f4", [1.5], 4, "integers >= 0"),
        ("<f4", [True], 4, "integers >= 0"),
        ("<f4", "12", 4, "shape must be a list"),
        ("|b1", [2], 2, "0 and 1"),  # bytes other than 0/1 in a bool array
    ],
)
def test_decoder_refuses_byte_count_and_shape_errors(
    dtype: str, shape: object, nbytes: int, match: str
) -> None:
    data = b"\x07" * nbytes
    with pytest.raises(ProtocolError, match=match):
        unpack(array_ext(dtype, shape, data))


def test_decoder_refuses_malformed_array_payloads() -> None:
    def ext(payload: bytes, code: int = ARRAY_EXT_CODE) -> bytes:
        return msgpack.packb(msgpack.ExtType(code, payload), use_bin_type=True)

    cases = {
        "two elements": ext(msgpack.packb(["<f4", [1]])),
        "data not bin": ext(msgpack.packb(["<f4", [1], "abcd"], use_bin_type=True)),
        "not an array": ext(msgpack.packb({"a": 1})),
        "truncated header": ext(b"\x93\xa3<f4\x92"),
        "empty": ext(b""),
        "other ext code": ext(msgpack.packb(["<f4", [1], b"abcd"], use_bin_type=True), code=2),
        "trailing bytes": ext(msgpack.packb(["<f4", [1], b"abcd"], use_bin_type=True) + b"xx"),
    }
    for name, data in cases.items():
        with pytest.raises(ProtocolError):
            unpack(data)
            pytest.fail(name)


def test_decoder_refuses_non_msgpack_and_truncated_messages() -> None:
    good = pack({"type": "infer", "id": 1, "obs": {"a": np.zeros((2, 3), np.float32)}})
    for cut in (1, 5, len(good) // 2, len(good) - 1):
        with pytest.raises(ProtocolError):
            unpack(good[:cut])
    with pytest.raises(ProtocolError):
        unpack(good + b"\x00")  # extra data after one message
    with pytest.raises(ProtocolError):
        unpack(b"\xc1")  # never-used msgpack byte
    with pytest.raises(ProtocolError):
        unpack(msgpack.packb({1: 2}))  # non-string map keys
    with pytest.raises(ProtocolError):
        unpack(b"\x81\xa1a" * 5000 + b"\xc0")  # nested far deeper than any message needs


def test_non_map_messages_decode_but_are_not_maps() -> None:
    # a non-map message is valid msgpack; the server refuses it (see test_serving_server)
    assert unpack(pack([1, 2, 3])) == [1, 2, 3]
    assert unpack(pack("infer")) == "infer"

"""Checked reader and writer for the IDX format of MNIST and Fashion-MNIST.

An IDX file is ``00 00 TT NN`` (TT: element type, NN: number of dimensions), then NN big-endian
uint32 sizes, then the elements in C order, big-endian. The reader checks the magic number, the
element type, the dimension count the caller expects and that the sizes match the file length,
and names the file in every error.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from robustattr.errors import UserInputError

__all__ = ["parse_idx", "read_idx_bytes", "to_idx_bytes"]

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of ``path`` (``.gz`` files are gunzipped, others read as they are)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserInputError(f"{path}: corrupt gzip file ({exc}); delete it and fetch again") from None


def parse_idx(data: bytes, *, source: str, dtype: np.dtype | type = np.uint8, ndim: int) -> np.ndarray:
    """Parse IDX bytes into an array, checking everything the header promises.

    Args:
        data: the decompressed file contents.
        source: the file name, for error messages.
        dtype: the element type the caller expects (native byte order in the result).
        ndim: the number of dimensions the caller expects (3 for images, 1 for labels).

    Returns:
        A read-only view ``(d0, ..., d{ndim-1})`` of ``data``, native byte order.

    Raises:
        UserInputError: bad magic number, unexpected type or rank, or a length mismatch.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserInputError(f"{source}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    type_code, n_dims = data[2], data[3]
    if type_code not in _TYPES:
        raise UserInputError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    file_dtype = _TYPES[type_code]
    if file_dtype.newbyteorder("=") != np.dtype(dtype).newbyteorder("="):
        raise UserInputError(f"{source}: IDX elements are {file_dtype}, expected {np.dtype(dtype)}")
    if n_dims != ndim:
        raise UserInputError(f"{source}: IDX file has {n_dims} dimensions, expected {ndim}")
    header = 4 + 4 * n_dims
    if len(data) < header:
        raise UserInputError(f"{source}: truncated IDX header")
    shape = struct.unpack(f">{n_dims}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * file_dtype.itemsize
    if len(data) != expected:
        raise UserInputError(
            f"{source}: IDX header says shape {shape} ({expected} bytes) but the file has {len(data)} bytes"
        )
    arr = np.frombuffer(data, dtype=file_dtype, offset=header).reshape(shape)
    return arr.astype(file_dtype.newbyteorder("="), copy=False)


def to_idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise an array (uint8, int8, int16, int32, float32, float64) as IDX bytes."""
    codes = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}
    dt = arr.dtype.newbyteorder("=")
    if dt not in codes:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    header = bytes([0, 0, codes[dt], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=_TYPES[codes[dt]]).tobytes()

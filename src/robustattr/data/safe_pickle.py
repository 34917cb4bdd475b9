"""Unpickle NumPy arrays without letting the pickle run code.

A pickle is a program: ``GLOBAL``/``REDUCE`` opcodes may call any importable function
(``os.system`` included). :func:`loads_arrays` admits only the handful of names NumPy uses to
pickle plain numeric arrays, and even those never reach NumPy with untrusted state: they build
inert placeholder objects that are checked and turned into arrays by this module, after the
unpickler has finished. Containers (tuple, list, dict) and plain scalars come from opcodes and
need no imports. Object arrays, structured dtypes and every other global raise
:class:`~robustattr.errors.UserInputError` before anything is called.
"""

from __future__ import annotations

import io
import pickle
import re
from typing import Any

import numpy as np

from robustattr.errors import UserInputError

__all__ = ["loads_arrays"]

# Plain numeric dtypes only: bool, (u)int, float, complex; byte order from the pickled state.
_DTYPE_SPEC = re.compile(r"^[<>|=]?(b1|\?|[iu][1248]|f[248]|c(8|16))$")


class _Refused(Exception):
    pass


class _DtypeProxy:
    """Stands for ``numpy.dtype(spec, align, copy)`` until its pickled state is checked."""

    def __init__(self, spec: Any, *_args: Any) -> None:
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise _Refused(f"dtype {spec!r} (only plain numeric dtypes are allowed)")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags); 8- or 9-tuple.
        if not isinstance(state, tuple) or len(state) < 5:
            raise _Refused("malformed dtype state")
        byteorder, subarray, names, fields = state[1:5]
        if subarray is not None or names is not None or fields is not None:
            raise _Refused("structured or sub-array dtype")
        if byteorder not in ("<", ">", "|", "="):
            raise _Refused(f"dtype byte order {byteorder!r}")
        if byteorder in "<>":
            self.dtype = self.dtype.newbyteorder(byteorder)


def _as_bytes(raw: Any) -> bytes:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):  # Python 2 pickles read with encoding="latin1"
        return raw.encode("latin1")
    if isinstance(raw, pickle.PickleBuffer):
        return bytes(raw.raw())
    raise _Refused(f"array data of type {type(raw).__name__}")


def _make_array(dtype: Any, shape: Any, fortran: bool, raw: Any) -> np.ndarray:
    if not isinstance(dtype, _DtypeProxy):
        raise _Refused("array without a checked dtype")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _Refused(f"array shape {shape!r}")
    data = _as_bytes(raw)
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != count * dtype.dtype.itemsize:
        raise _Refused(f"array data has {len(data)} bytes, shape {shape} needs {count * dtype.dtype.itemsize}")
    flat = np.frombuffer(data, dtype=dtype.dtype, count=count)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


class _ArrayProxy:
    """Stands for ``numpy.core.multiarray._reconstruct(ndarray, ...)`` until ``__setstate__``."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused("malformed ndarray state")
        if len(state) == 5:
            state = state[1:]  # drop the version number
        shape, dtype, fortran, raw = state
        self.array = _make_array(dtype, tuple(shape), bool(fortran), raw)


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayProxy:
    if subtype is not _ARRAY_CLASS:
        raise _Refused("array subclass")
    return _ArrayProxy()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> _ArrayProxy:
    proxy = _ArrayProxy()
    proxy.array = _make_array(dtype, tuple(shape), order == "F", buf)
    return proxy


def _scalar(dtype: Any, raw: Any = None) -> Any:
    arr = _make_array(dtype, (), False, raw)
    return arr[()]


def _codecs_encode(text: Any, encoding: str = "utf-8", *_: Any) -> bytes:
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ARRAY_CLASS = object()  # sentinel returned for numpy.ndarray
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _ARRAY_CLASS,
    ("numpy", "dtype"): _DtypeProxy,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("persistent id")


def _finish(obj: Any) -> Any:
    """Replace placeholders by arrays; refuse anything but containers, arrays and plain scalars."""
    if isinstance(obj, _ArrayProxy):
        if obj.array is None:
            raise _Refused("ndarray without state")
        return obj.array
    if isinstance(obj, dict):
        return {_finish(k): _finish(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finish(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        return obj
    raise _Refused(f"object of type {type(obj).__name__}")


def loads_arrays(data: bytes, *, source: str) -> Any:
    """Unpickle ``data`` admitting only NumPy numeric arrays inside tuples, lists and dicts.

    Args:
        data: the pickle bytes (Python 2 pickles are read with ``encoding="latin1"``).
        source: the file name, for error messages.

    Returns:
        The unpickled object with every array a plain, writable ``np.ndarray``.

    Raises:
        UserInputError: the pickle wants anything else (a function, a class, an object array).
    """
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
        return _finish(obj)
    except _Refused as exc:
        raise UserInputError(
            f"{source}: refused to unpickle: {exc}; only NumPy numeric arrays in tuples, lists and dicts "
            "are allowed (a pickle can run code)"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserInputError(f"{source}: not a readable pickle of arrays: {exc}") from None

"""The one reader of every JSON file robustattr reads: configs, checkpoint sidecars, result files,
cache manifests, ``metrics.jsonl``.

Each file is read as untrusted input, whoever wrote it: the path must be a regular file (a FIFO
would block the read forever, a device never ends) and, for a file robustattr wrote itself
(``corrupt=True``: a run directory's or the data cache's), not a symbolic link; the bytes UTF-8, the text JSON, nesting and
integers of sane size (CPython's decoder otherwise ends in ``RecursionError`` or its 4,300-digit
``ValueError``), and the value of the *shape* its reader expects. A read the system refuses
(permission, I/O error) is a ``FileSystemError`` naming the file (exit 1); any other problem is one
``UserInputError`` naming the file, where in it, what was wrong and how to repair it, so the CLI
prints one line and exits 2; no caller ever sees a ``KeyError`` or ``TypeError`` from a file.

Shapes are small composable checks::

    SIDECAR = record({"step": INT, "rng": record({"torch_cpu": BASE64})}, optional={"model": STR})
    meta = read_json(path, SIDECAR, kind="checkpoint sidecar", fix="delete it or retrain")

This module imports nothing of robustattr but ``errors``, so every layer may use it.
"""

from __future__ import annotations

import binascii
import base64
import errno
import json
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from robustattr.errors import BAD_PATH_ERRNOS, FileSystemError, UserInputError, link_refused

__all__ = [
    "Shape", "ANY", "INT", "NUMBER", "STR", "BOOL", "BASE64", "SHA256", "FILE_NAME",
    "nullable", "list_of", "dict_of", "record", "at_least_int",
    "read_json", "read_json_lines", "parse_json_text", "check_shape",
    "MAX_DEPTH", "MAX_INT_DIGITS", "MAX_JSON_BYTES",
]

#: Deepest nesting accepted; robustattr's own files nest at most 5 deep.
MAX_DEPTH = 32
#: Longest integer accepted, in digits: far beyond any real value (robustattr's largest, a 128-bit
#: PCG64 state, has 39) and well below CPython's 4,300-digit conversion limit.
MAX_INT_DIGITS = 1000
#: Largest JSON document read whole (a sidecar or config is kilobytes).
MAX_JSON_BYTES = 64 << 20


class _Mismatch(Exception):
    """A value that does not fit its shape: ``where`` (a key path) and the problem in words."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where, self.problem = where, problem


def _describe(value: Any) -> str:
    """A short description of what was found: ``the list [1, 2]``, ``the string "x"``."""
    kind = {bool: "the boolean", int: "the integer", float: "the number", str: "the string",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
    if value is None or isinstance(value, list | dict):
        return kind
    text = json.dumps(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class Shape:
    """A check of a decoded JSON value; ``describes`` reads as "must be <describes>"."""

    def __init__(self, describes: str, ok: Callable[[Any], bool] = lambda v: True,
                 inner: Callable[[Any, str], None] | None = None) -> None:
        self.describes, self._ok, self._inner = describes, ok, inner

    def check(self, value: Any, where: str) -> None:
        """Raise ``_Mismatch`` naming ``where`` (a key path such as ``rng.numpy.pos``) on a misfit."""
        if not self._ok(value):
            raise _Mismatch(where, f"must be {self.describes}, found {_describe(value)}")
        if self._inner is not None:
            self._inner(value, where)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_base64(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


ANY = Shape("anything")
INT = Shape("an integer", _is_int)
NUMBER = Shape("a number", lambda v: _is_int(v) or isinstance(v, float))
STR = Shape("a string", lambda v: isinstance(v, str))
BOOL = Shape("true or false", lambda v: isinstance(v, bool))
BASE64 = Shape("base64 text", _is_base64)
SHA256 = Shape("a sha256 digest (64 hex digits)",
               lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None)
#: A bare file name: no folder part, so it can only name a file inside the folder that lists it.
FILE_NAME = Shape("a file name inside its folder (no '/', '\\' or '..')",
                  lambda v: isinstance(v, str) and v not in ("", ".", "..") and not re.search(r"[/\\\x00]", v))


def nullable(shape: Shape) -> Shape:
    """``shape`` or null."""
    return Shape(f"{shape.describes} or null", lambda v: v is None or shape._ok(v),
                 lambda v, where: None if v is None else shape.check(v, where))


def list_of(item: Shape) -> Shape:
    """A list whose every element has shape ``item``."""
    def inner(v: list, where: str) -> None:
        for i, x in enumerate(v):
            item.check(x, _join(where, i))
    return Shape(f"a list of {item.describes}", lambda v: isinstance(v, list), inner)


def dict_of(value: Shape, key: Shape = STR) -> Shape:
    """An object whose every key has shape ``key`` and every value shape ``value``."""
    def inner(v: dict, where: str) -> None:
        for k, x in v.items():
            if not key._ok(k):
                raise _Mismatch(where, f"has the key {json.dumps(k)}, which must be {key.describes}")
            value.check(x, _join(where, k))
    return Shape(f"an object of {value.describes}", lambda v: isinstance(v, dict), inner)


def record(required: Mapping[str, Shape], optional: Mapping[str, Shape] | None = None) -> Shape:
    """An object with the ``required`` keys and perhaps the ``optional`` ones; other keys are
    allowed (files from newer versions may carry more)."""
    optional = optional or {}

    def inner(v: dict, where: str) -> None:
        for key, shape in required.items():
            if key not in v:
                raise _Mismatch(where, f"lacks the key '{key}'")
            shape.check(v[key], _join(where, key))
        for key, shape in optional.items():
            if key in v:
                shape.check(v[key], _join(where, key))
    return Shape("an object", lambda v: isinstance(v, dict), inner)


def at_least_int(low: int) -> Shape:
    """An integer ``>= low``."""
    return Shape(f"an integer >= {low}", lambda v: _is_int(v) and v >= low)



# --- decoding ------------------------------------------------------------------------------------
class _Refused(Exception):
    """A decoding problem in words (the caller adds the file)."""


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: deep input must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (item.values() if isinstance(item, dict) else item))
    return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out and not key.startswith("_comment"):
            raise _Refused(f"key '{key}' appears more than once; keep one")
        out[key] = value
    return out


def _decode(text: str, unique_keys: bool = False) -> Any:
    """JSON text → value, or ``_Refused``/``json.JSONDecodeError`` saying why not."""
    try:
        value = json.loads(text, parse_int=_bounded_int, object_pairs_hook=_unique_keys if unique_keys else None)
    except RecursionError:
        raise _Refused(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError too: let it through with its position
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise _Refused(str(exc)) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise _Refused(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def parse_json_text(text: str) -> Any:
    """Decode JSON ``text`` (a ``--set`` value) with the limits of the file reader.

    Raises:
        ValueError: not JSON, or JSON nested or sized beyond the limits; the message says which.
    """
    try:
        return _decode(text)
    except _Refused as exc:
        raise ValueError(str(exc)) from None


class _File:
    """A file being read and how to word its problems: "<kind> <path>: <problem>; <fix>", or for a
    file robustattr wrote itself (``corrupt``) "<kind> <path> is corrupt: <problem>; <fix>"."""

    def __init__(self, path: Path, kind: str, fix: str, corrupt: bool, follow_links: bool | None = None) -> None:
        self.path, self.kind, self.fix, self.corrupt = path, kind, fix, corrupt
        # robustattr's own files are never read through a link; a person's file (a config) may be one.
        self.follow_links = not corrupt if follow_links is None else follow_links

    def error(self, problem: str, *, about_content: bool = True) -> UserInputError:
        """``about_content``: a problem inside the file (else about the path: "not found")."""
        head = f"{self.kind} {self.path}"
        if about_content:
            head += " is corrupt:" if self.corrupt else ":"
        return UserInputError(f"{head} {problem}{'; ' + self.fix if self.fix else ''}")

    def read_bytes(self, limit: int | None) -> bytes:
        """The bytes of the regular file; FIFOs, devices and folders are refused unread."""
        try:
            # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
            nofollow = 0 if self.follow_links else os.O_NOFOLLOW
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | nofollow | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise self.error("not found", about_content=False) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP and not self.follow_links:
                raise link_refused(self.path) from None
            if exc.errno not in BAD_PATH_ERRNOS:  # permission, I/O error: the system's refusal, exit 1
                raise FileSystemError(f"cannot read {self.kind} {self.path}: {exc.strerror}") from None
            raise self.error(f"cannot be read: {exc.strerror}", about_content=False) from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise self.error("is a directory, not a file", about_content=False)
            if not stat.S_ISREG(info.st_mode):
                raise self.error("is not a regular file (a FIFO, socket or device)", about_content=False)
            if limit is not None and info.st_size > limit:
                raise self.error(f"is {info.st_size} bytes, more than the {limit} accepted", about_content=False)
            os.set_blocking(fd, True)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise FileSystemError(f"cannot read {self.kind} {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def decode(self, raw: bytes, *, line: int | None = None, bom: bool = False, unique_keys: bool = False) -> Any:
        """UTF-8 JSON ``raw`` (the file, or its ``line``) → value, within the limits."""
        where = f"line {line}: " if line is not None else ""
        try:
            text = raw.decode("utf-8-sig" if bom else "utf-8")
        except UnicodeDecodeError as exc:
            newlines = raw.count(b"\n", 0, exc.start)
            at = f" on line {newlines + 1}" if line is None else ""
            problem = f"{where}not UTF-8 text (byte 0x{raw[exc.start]:02x}{at})"
            if not self.corrupt:  # a person's file, e.g. saved as Latin-1
                raise UserInputError(f"cannot read {self.kind} {self.path}: {problem}"
                                     f"{'; ' + self.fix if self.fix else ''}") from None
            raise self.error(problem) from None
        try:
            return _decode(text, unique_keys)
        except json.JSONDecodeError as exc:
            at = f"line {exc.lineno} column {exc.colno}" if line is None else f"line {line} column {exc.colno}"
            raise self.error(f"invalid JSON at {at}: {exc.msg}") from None
        except _Refused as exc:
            raise self.error(f"{where}{exc}") from None

    def check(self, value: Any, shape: Shape, line: int | None = None) -> Any:
        try:
            shape.check(value, "")
        except _Mismatch as exc:
            place = f"'{exc.where}'" if exc.where else "it"  # "it": the whole document (or line)
            raise self.error(f"{f'line {line}: ' if line is not None else ''}{place} {exc.problem}") from None
        return value


def check_shape(value: Any, shape: Shape, *, kind: str, path: str | os.PathLike[str], fix: str = "",
                corrupt: bool = True) -> Any:
    """``value`` (read from ``path`` earlier) if it has ``shape``, else the reader's ``UserInputError``."""
    return _File(Path(path), kind, fix, corrupt).check(value, shape)


def read_json(path: str | os.PathLike[str], shape: Shape = ANY, *, kind: str, fix: str = "",
              corrupt: bool = True, bom: bool = False, unique_keys: bool = False,
              follow_links: bool | None = None) -> Any:
    """Read, decode and shape-check one JSON document.

    Args:
        path: the file.
        shape: what the decoded value must look like.
        kind: what the file is, for messages ("config file", "checkpoint sidecar").
        fix: how the user repairs it ("delete it and retrain"), appended to every message.
        corrupt: the file is one robustattr wrote, so a problem reads "is corrupt"; False for
            files people write (configs), whose problems read as mistakes.
        bom: accept a UTF-8 byte-order mark (hand-edited files).
        unique_keys: a key repeated within an object (other than ``_comment*``) is an error.
        follow_links: read through a symbolic link at ``path``; default: only when not ``corrupt``
            (a person's file), so a link where robustattr keeps its own file is refused.

    Returns:
        The decoded value.

    Raises:
        FileSystemError: the system refused the read (permission, I/O error), naming ``path``.
        UserInputError: one line naming ``path``: missing, a symbolic link, not a regular file, too large, not
        UTF-8, not JSON (line and column), nested too deep, an integer too long, or a value that
        does not fit ``shape`` (the key path and what was expected).
    """
    source = _File(Path(path), kind, fix, corrupt, follow_links)
    value = source.decode(source.read_bytes(MAX_JSON_BYTES), bom=bom, unique_keys=unique_keys)
    return source.check(value, shape)


def read_json_lines(path: str | os.PathLike[str], shape: Shape = ANY, *, kind: str, fix: str = "") -> list[Any]:
    """Read a JSON-lines file robustattr wrote (one JSON value per line, e.g. ``metrics.jsonl``).

    A last line without its newline is a write cut short by a kill and is dropped; every other line
    must decode and fit ``shape``, else one ``UserInputError`` names the file and the line.
    """
    source = _File(Path(path), kind, fix, corrupt=True)
    complete = source.read_bytes(None).split(b"\n")[:-1]  # after the last newline: nothing, or a cut line
    out = []
    for number, raw in enumerate(complete, start=1):
        if raw.strip():
            out.append(source.check(source.decode(raw, line=number), shape, line=number))
    return out

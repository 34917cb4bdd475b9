"""File plumbing shared by every writer: SHA-256 digests, atomic writes, appends, locks.

Every whole file robustattr writes goes through a temporary name in the destination folder
(``.<name>.<random>.partial``), is fsync'ed and then renamed over the final name (``os.replace``),
so a killed process leaves either the old file or the new one, never a half-written file under a
name a later run would trust. The ``.partial`` files a kill leaves behind are removed by
:func:`remove_stale_partials` at the next start of a writer of that folder.

Files that grow (``metrics.jsonl``, the per-example CSV) are opened by :func:`open_regular`. One
rule for symbolic links, whatever the writer: a link at the final name (or at a lock file) is
refused with :func:`~robustattr.errors.link_refused` (exit 2) and its target is left untouched.
A write the operating system refuses (disk full, quota, file size limit, read-only, permission)
becomes a :class:`~robustattr.errors.FileWriteError` naming the file (exit 1).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from robustattr.errors import FileWriteError, UserInputError, link_refused

__all__ = [
    "sha256_bytes", "sha256_file", "atomic_file", "atomic_write_bytes", "atomic_write_json",
    "fsync_dir", "file_lock", "naming_write_errors", "open_regular", "remove_stale_partials", "refuse_link",
    "system_refusal", "SYSTEM_ERRNOS",
]

_CHUNK = 1 << 22
PARTIAL_SUFFIX = ".partial"
#: Errors a write itself meets (as opposed to, say, a network read inside an ``atomic_file`` block).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
#: The system refusing, whichever file and whichever source: no other source or retry would do better.
SYSTEM_ERRNOS = frozenset(_WRITE_ERRNOS | {errno.EACCES, errno.EPERM})
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^'\"\n\]]+)|OSError\((\d+), '([^']+)'\)")


def system_refusal(exc: BaseException, path: str | os.PathLike[str] | None = None,
                   text: str = "") -> FileWriteError | None:
    """A :class:`FileWriteError` naming the path when ``exc`` (or a child's error ``text``, e.g. pip's
    "[Errno 28] No space left on device") is the system refusing (:data:`SYSTEM_ERRNOS`); else None."""
    code, reason = getattr(exc, "errno", None), getattr(exc, "strerror", None)
    if code not in SYSTEM_ERRNOS and text:
        for match in _ERRNO_TEXT.finditer(text):
            number, words = int(match.group(1) or match.group(3)), (match.group(2) or match.group(4)).strip()
            if number in SYSTEM_ERRNOS:
                code, reason = number, words
                break
    if code not in SYSTEM_ERRNOS:
        return None
    where = getattr(exc, "filename", None) or path
    return FileWriteError(f"cannot write {where}: {reason or os.strerror(code)}")


@contextlib.contextmanager
def naming_write_errors(dest: str | os.PathLike[str], *, any_os_error: bool = True) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``dest`` into a :class:`FileWriteError` naming it.

    Args:
        dest: the file being written (what the message names).
        any_os_error: every ``OSError`` of the block is a write error; False: only those of a
            write itself (disk full, quota, file size limit, read-only, I/O error), so that a
            network error inside the block keeps its own type.
    """
    try:
        yield
    except FileWriteError:
        raise
    except OSError as exc:
        if not any_os_error and exc.errno not in _WRITE_ERRNOS:
            raise
        raise FileWriteError(f"cannot write {dest}: {exc.strerror or exc}") from None


def refuse_link(path: str | os.PathLike[str]) -> None:
    """Raise :func:`~robustattr.errors.link_refused` when ``path`` is a symbolic link (dangling or not)."""
    if os.path.islink(path):
        raise link_refused(path)


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry (after a rename) where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(dest: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``dest``; on success fsync it and rename it to ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched. A write the
    system refuses (disk full, ...) raises :class:`FileWriteError` naming ``dest``. A symbolic
    link at ``dest`` is refused (``UserInputError`` naming it) before anything is written.
    """
    dest = Path(dest)
    refuse_link(dest)
    with naming_write_errors(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL_SUFFIX, dir=dest.parent)
    try:
        with naming_write_errors(dest, any_os_error=False), os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        with naming_write_errors(dest):
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; cached data is meant to be shared
            os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_file(dest, "wb") as f:
        f.write(data)


def atomic_write_json(dest: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``dest`` atomically."""
    with atomic_file(dest, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def open_regular(path: str | os.PathLike[str], mode: str) -> IO[Any]:
    """Open ``path`` for writing (``"a"``, ``"w"``, ``"r+b"``, ...) without following a symbolic link.

    Raises:
        UserInputError: ``path`` is a symbolic link (a write would land in its target, perhaps
            outside the folder) or not a regular file.
        FileWriteError: the system refused to open it (read-only folder, ...).
    """
    flags = {"a": os.O_WRONLY | os.O_APPEND | os.O_CREAT, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
             "r+": os.O_RDWR}[mode.replace("b", "").replace("t", "")]
    path = Path(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise link_refused(path) from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads: opening it for writing fails so
            raise UserInputError(f"{path} is not a regular file (a FIFO, socket or device); remove it") from None
        raise FileWriteError(f"cannot write {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserInputError(f"{path} is not a regular file (a FIFO, socket or device); remove it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""}))


def remove_stale_partials(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.*.partial`` files writers killed mid-write left in ``folder``; return them.

    Call it only while holding the lock of every writer of ``folder``: a live writer's file has
    the same name pattern.
    """
    removed = []
    for path in Path(folder).glob(f".*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(OSError):
            if path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed); no-op where fcntl is absent.

    Raises:
        UserInputError: ``path`` is a symbolic link or not a regular file (neither is opened).
        FileWriteError: the system refused to create it (read-only file system, permission, ...).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with naming_write_errors(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    f = open_regular(path, "a")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    finally:
        f.close()

"""One writer per run directory: an exclusive OS lock on ``model_dir`` for ``train``, ``eval`` and
``figure``.

The lock is ``flock(2)`` on the directory itself, so no lock file appears among the run's files
and none can be a symbolic link. The kernel drops it when the process ends, however it ends
(SIGKILL included), so a killed run never blocks the next. A second writer is refused at once
with one line naming the directory and, where ``/proc/locks`` tells it, the holder's PID.

Taking the lock refuses a run directory where a symbolic link stands in place of one of its files
(one line naming the link, exit 2; neither the link nor its target is touched). While the lock is
held the ``.partial`` files of writers killed mid-write are removed (nobody else can be writing
them). Under ``torchrun`` only rank 0 writes the run directory, so only rank 0 locks it. The lock is re-entrant within a process: ``repro`` trains and then evaluates the
same directory, and a driver called from another may lock what its caller already holds.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from robustattr.files import naming_write_errors, remove_stale_partials
from robustattr.errors import FileSystemError, UserInputError, link_refused

__all__ = ["run_dir_lock", "locks_model_dir", "lock_holder", "quiet_before_lock"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# realpaths of the run directories this process holds the lock of.
_HELD: set[str] = set()


def lock_holder(fd: int) -> int | None:
    """PID of the process holding an ``flock`` on the file behind ``fd`` (Linux ``/proc/locks``), or None."""
    info = os.fstat(fd)
    ident = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 4579 fe:00:2146809 0 EOF" (blocked waiters carry "->")
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident and fields[4].isdigit():
                    return int(fields[4]) or None
    except OSError:
        pass
    return None


#: The files robustattr keeps in a run directory: training's, the evaluations', the figures'.
_RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint-*", "events.out.tfevents.*", "eval_*", "figure_*")


def _refuse_links(run_dir: Path) -> None:
    """One rule for every command that writes a run directory: a symbolic link in place of one of
    its files is refused before anything is read, written or cleared (``--overwrite`` included), so
    neither the link nor its target ever changes."""
    for pattern in _RUN_FILES:
        for path in sorted(run_dir.glob(pattern)):
            if path.is_symlink():
                raise link_refused(path)


def _only_lockable(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise UserInputError(f"model_dir {run_dir} is a file, not a directory; choose another model_dir")


@contextlib.contextmanager
def run_dir_lock(run_dir: str | os.PathLike[str], command: str, *, create: bool = False) -> Iterator[None]:
    """Hold the run directory's exclusive lock for the duration of the block.

    Under ``torchrun`` rank 0 takes it, and a refusal stops every rank with the same message.

    Args:
        run_dir: the run directory (``model_dir``).
        command: what this process does there ("train", "eval pgd"), for logs.
        create: make the directory (and its parents) when missing; what was made is removed again
            when the block leaves it empty, so a run refused or failed early leaves nothing behind.
            Without ``create`` a missing directory is not locked (the caller reports it).

    Raises:
        UserInputError: another process holds the lock (naming the directory and its PID), or
            ``run_dir`` is not a directory.
    """
    from robustattr import distributed

    with contextlib.ExitStack() as held:
        distributed.run_on_main(lambda: held.enter_context(_lock_here(Path(run_dir), command, create)))
        yield


@contextlib.contextmanager
def quiet_before_lock(*loggers: str) -> Iterator[None]:
    """Hold back the log lines of ``loggers`` (module names) for the block: a check that runs before
    the lock and again under it logs once, under the lock, so a process the lock refuses prints
    the refusal and nothing else."""
    held = [logging.getLogger(name) for name in loggers]
    before = [logger.disabled for logger in held]
    for logger in held:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, was in zip(held, before):
            logger.disabled = was


def locks_model_dir(command: str) -> Callable[[F], F]:
    """Decorate a driver whose first argument is a config: it runs holding ``cfg.model_dir``'s lock."""
    def decorate(driver: F) -> F:
        @functools.wraps(driver)
        def locked(cfg: Any, *args: Any, **kwargs: Any) -> Any:
            with run_dir_lock(cfg.model_dir, command):
                return driver(cfg, *args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate


@contextlib.contextmanager
def _lock_here(run_dir: Path, command: str, create: bool) -> Iterator[None]:
    """:func:`run_dir_lock` in this process."""
    _only_lockable(run_dir)
    key = os.path.realpath(run_dir)
    if key in _HELD:  # a caller up the stack holds it already (repro: train, then evaluate)
        yield
        return
    created: list[Path] = []  # the folders this call makes, innermost first
    if not run_dir.exists():
        if not create:
            yield
            return
        created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
        with naming_write_errors(run_dir):  # read-only file system, permission: exit 1 naming it
            run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileSystemError(f"cannot open run directory {run_dir}: {exc.strerror}") from None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as file_lock does
        fcntl = None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                pid = lock_holder(fd)
                holder = f"process {pid}" if pid is not None else "another process"
                raise UserInputError(
                    f"run directory {run_dir} is in use by {holder} (another robustattr train, eval or "
                    f"figure); one writer per run directory: wait for it to finish, or stop it") from None
        _refuse_links(run_dir)
        for path in remove_stale_partials(run_dir):
            log.info("removed %s, left by a writer that was killed", path)
        _HELD.add(key)
        log.debug("%s: holding the lock of %s", command, run_dir)
        yield
    finally:
        _HELD.discard(key)
        os.close(fd)  # releases the lock
        for folder in created:  # innermost first; stops at the first that is not empty
            try:
                folder.rmdir()
            except OSError:
                break

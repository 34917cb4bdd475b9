"""Exceptions shared by every layer.

``UserInputError`` marks bad input from the user (a config key, a path, a data file): the CLI
prints its message on one line and exits with status 2, never a traceback. Everything else is a
bug or an environment failure and exits with status 1 (``TrainingError`` and ``FileSystemError``
with one line, too).

Symbolic links: the files robustattr writes and reads back (a run directory's, the data cache's)
are regular files only; a link at one of their paths is refused with :func:`link_refused` (a
``UserInputError``, exit 2) and its target is neither read nor written.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable

__all__ = ["UserInputError", "TrainingError", "FileSystemError", "FileWriteError", "LinkRefusedError",
           "link_refused", "did_you_mean", "BAD_PATH_ERRNOS"]


class UserInputError(ValueError):
    """Bad input: the message names the thing, what was wrong and what is allowed."""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or infinite loss): the message names the step and the last
    good checkpoint. The CLI prints it on one line and exits with status 1."""


#: ``errno`` values that mean the path itself is wrong (missing, not a folder, a folder, a file where
#: a folder must be made, a link loop, too long): the user's to fix, exit 2. Any other ``OSError`` is
#: the system refusing (permission, read-only, disk full, I/O): exit 1.
BAD_PATH_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ELOOP,
                             errno.ENAMETOOLONG})


class LinkRefusedError(UserInputError):
    """A symbolic link where robustattr keeps one of its own files (see :func:`link_refused`)."""


def link_refused(path: object) -> LinkRefusedError:
    """The one refusal of a symbolic link at ``path``, a file of a run directory or the data cache."""
    return LinkRefusedError(
        f"{path} is a symbolic link; robustattr reads and writes its run-directory and data-cache files "
        "only as regular files, never through a link (its target was not touched): replace the link by "
        "a copy of its target, or remove it")


class FileSystemError(RuntimeError):
    """The operating system refused to read or write a file (permission denied, read-only file
    system, disk full, I/O error): the message names the path and the cause. The CLI prints it on
    one line and exits with status 1, whatever the command."""


class FileWriteError(FileSystemError):
    """The operating system refused a write (disk full, quota, file too large, read-only): the
    message names the file being written and the cause. The CLI prints it on one line and exits
    with status 1; the file's previous content is still in place (writes go through a temporary
    file and a rename)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

"""Exceptions shared by every layer.

``UserInputError`` marks bad input from the user (a config key, a path, a data file): the CLI
prints its message on one line and exits with status 2, never a traceback. Everything else is a
bug or an environment failure and exits with status 1 (``TrainingError`` and ``FileWriteError``
with one line, too).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["UserInputError", "TrainingError", "FileWriteError", "did_you_mean"]


class UserInputError(ValueError):
    """Bad input: the message names the thing, what was wrong and what is allowed."""


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or infinite loss): the message names the step and the last
    good checkpoint. The CLI prints it on one line and exits with status 1."""


class FileWriteError(RuntimeError):
    """The operating system refused a write (disk full, quota, file too large, read-only): the
    message names the file being written and the cause. The CLI prints it on one line and exits
    with status 1; the file's previous content is still in place (writes go through a temporary
    file and a rename)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

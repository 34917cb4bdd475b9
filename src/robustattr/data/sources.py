"""Ordered raw-data sources: try each in turn, verify digests, explain every failure.

A dataset module lists its sources (local folders, HTTP mirrors, a PyPI package) as
:class:`Source` objects; :func:`first_working` returns the first whose ``load`` succeeds and, when
all fail, raises one :class:`~robustattr.errors.UserInputError` that lists each source and why it
failed. Files without a published digest are checked against the digest recorded the first time
they were used (:class:`TrustStore`, "trust on first use").
"""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from robustattr.files import atomic_file, atomic_write_json, file_lock, system_refusal
from robustattr.errors import UserInputError
from robustattr.json_files import SHA256, dict_of, read_json, record

__all__ = [
    "SourceError", "SourceMissing", "Source", "first_working", "http_download", "pip_download", "check_digest",
    "TrustStore", "offline",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
HTTP_TIMEOUT_S = 10.0


class SourceError(Exception):
    """One source cannot deliver (bad file, digest mismatch); the next is tried, with a warning."""


class SourceMissing(SourceError):
    """One source has nothing here (no folder, no files, no network); the next is tried quietly."""


@dataclass(frozen=True)
class Source(Generic[T]):
    """A place raw data may come from: ``label`` for messages, ``load`` returns the parsed raw data."""

    label: str
    load: Callable[[], T]


_EXPECTED = (
    SourceError, UserInputError, OSError, urllib.error.URLError, zipfile.BadZipFile,
    tarfile.TarError, EOFError, subprocess.SubprocessError,
)


def first_working(dataset: str, sources: Sequence[Source[T]], hint: str = "") -> tuple[Source[T], T]:
    """Return ``(source, data)`` for the first source whose ``load()`` succeeds.

    Raises:
        UserInputError: every source failed; the one-line message lists each source and its reason.
    """
    failures = []
    for i, src in enumerate(sources, 1):
        log.info("%s: trying source %d/%d: %s", dataset, i, len(sources), src.label)
        try:
            data = src.load()
        except _EXPECTED as exc:
            refusal = system_refusal(exc)  # a full or read-only disk fails every source alike: exit 1
            if refusal is not None:
                raise refusal from None
            reason = " ".join(str(exc).split()) or type(exc).__name__
            level = logging.INFO if isinstance(exc, (SourceMissing, urllib.error.URLError)) else logging.WARNING
            log.log(level, "%s: source %s failed: %s", dataset, src.label, reason)
            failures.append(f"({i}) {src.label}: {reason}")
            continue
        log.info("%s: using %s", dataset, src.label)
        return src, data
    tried = "; ".join(failures) if failures else "no sources configured"
    raise UserInputError(f"no source for dataset '{dataset}' worked: {tried}." + (f" {hint}" if hint else ""))


def offline() -> bool:
    """True when ``$ROBUSTATTR_OFFLINE`` is set to a true value: HTTP sources are then skipped."""
    return os.environ.get("ROBUSTATTR_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_digest(actual: str, expected: str, what: str) -> None:
    """Raise :class:`SourceError` naming ``what`` and both digests when they differ."""
    if actual != expected:
        raise SourceError(f"{what}: sha256 mismatch: got {actual}, expected {expected}")


def http_download(url: str, dest: Path, *, timeout: float = HTTP_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically (temp file + rename); reuse ``dest`` if present.

    Raises:
        SourceError: offline mode, network failure, HTTP error or timeout.
    """
    if dest.is_file():
        return dest
    if offline():
        raise SourceMissing("skipped: $ROBUSTATTR_OFFLINE is set")
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_file(dest) as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise SourceMissing(f"download of {url.rsplit('/', 1)[-1]} failed: {getattr(exc, 'reason', exc)}") from None
    return dest


def pip_download(requirement: str, dest_dir: Path, *, timeout: float = 600.0) -> Path:
    """Fetch one wheel with ``python -m pip download --no-deps`` (never installed); return its path.

    Raises:
        SourceError: pip failed (no registry access, unknown version) or produced no wheel.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", requirement, "-d", str(dest_dir),
    ]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SourceError(f"pip download {requirement} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        refusal = system_refusal(OSError(), dest_dir, proc.stderr or proc.stdout or "")
        if refusal is not None:  # pip met a full or read-only disk: the system's refusal, not the source's
            raise refusal
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise SourceError(f"pip download {requirement} failed: {lines[-1] if lines else proc.returncode}")
    wheels = sorted(dest_dir.glob("*.whl"))
    if not wheels:
        raise SourceError(f"pip download {requirement} produced no wheel")
    return wheels[0]


_TRUSTED = dict_of(record({"sha256": SHA256}))


class TrustStore:
    """Digests of files that have no published checksum, recorded on first use.

    Stored as ``<root>/trusted-sha256.json``: ``{"gtsrb/train.p": {"sha256": ..., "first_seen": ...}}``.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "trusted-sha256.json"

    def _read(self) -> dict[str, Any]:
        if not self.path.exists() and not self.path.is_symlink():
            return {}
        return read_json(self.path, _TRUSTED, kind="trust file", fix="delete it to start over")

    def check(self, key: str, digest: str, what: str) -> bool:
        """Raise :class:`SourceError` if ``key`` was recorded with another digest; True if known."""
        entry = self._read().get(key)
        if entry is None:
            return False
        if entry["sha256"] != digest:
            raise SourceError(
                f"{what}: sha256 {digest} differs from {entry['sha256']} recorded on first use "
                f"({entry.get('first_seen', '?')}); if you replaced the file on purpose, remove "
                f"'{key}' from {self.path}"
            )
        return True

    def record(self, key: str, digest: str, what: str) -> None:
        """Record ``digest`` for ``key`` unless already known (logged: the user should see it once)."""
        with file_lock(self.path.with_name(".trusted-sha256.lock")):
            entries = self._read()
            if key in entries:
                return
            entries[key] = {
                "sha256": digest,
                "file": what,
                "first_seen": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            atomic_write_json(self.path, entries)
        log.warning("%s: no published checksum; recorded sha256 %s on first use in %s", what, digest, self.path)

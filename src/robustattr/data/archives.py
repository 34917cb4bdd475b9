"""Safe extraction of tar and zip archives.

Every member is checked *before* anything is written: an absolute path, a ``..`` component, a
drive letter, or a symbolic/hard link whose target resolves outside the destination raises
:class:`~robustattr.errors.UserInputError` naming the archive and the member. Device files and
FIFOs are refused too. Tar extraction additionally uses Python's ``filter="data"`` where the
interpreter has it (3.11.4+), which drops permission bits and ownership.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from robustattr.errors import UserInputError

__all__ = ["safe_extract", "check_member_name"]


def check_member_name(name: str, *, archive: str | Path) -> str:
    """Return the normalised relative path of an archive member, or raise if it could escape."""
    if "\x00" in name:
        raise UserInputError(f"{archive}: refused unsafe member {name!r} (NUL in name)")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        raise UserInputError(f"{archive}: refused unsafe member {name!r} (absolute path)")
    parts = PurePosixPath(norm).parts
    if ".." in parts:
        raise UserInputError(f"{archive}: refused unsafe member {name!r} ('..' component)")
    return posixpath.normpath(norm)


def _link_target_inside(member_path: str, target: str, *, hard: bool) -> bool:
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        return False
    # Symlink targets are relative to the link's folder; hard-link targets to the archive root.
    base = "" if hard else posixpath.dirname(member_path)
    joined = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    return not (joined == ".." or joined.startswith("../"))


def _check_tar(tf: tarfile.TarFile, archive: Path) -> None:
    for m in tf.getmembers():
        path = check_member_name(m.name, archive=archive)
        if m.issym() or m.islnk():
            if not _link_target_inside(path, m.linkname, hard=m.islnk()):
                kind = "hard link" if m.islnk() else "symlink"
                raise UserInputError(
                    f"{archive}: refused unsafe member {m.name!r} ({kind} to {m.linkname!r} outside the target)"
                )
        elif not (m.isfile() or m.isdir()):
            raise UserInputError(f"{archive}: refused member {m.name!r} (device, FIFO or other special file)")


def _check_zip(zf: zipfile.ZipFile, archive: Path) -> None:
    for info in zf.infolist():
        check_member_name(info.filename, archive=archive)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:  # a symlink stored Unix-style: zipfile would write it as a file
            raise UserInputError(f"{archive}: refused member {info.filename!r} (symlink in a zip)")


def safe_extract(archive: str | Path, dest: str | Path) -> Path:
    """Extract a ``.tar``/``.tgz``/``.tar.gz``/``.zip`` archive into ``dest`` after checking every member.

    Args:
        archive: the archive file (format detected from its contents, not its name).
        dest: the destination folder (created if needed).

    Returns:
        ``dest`` as a Path.

    Raises:
        UserInputError: the archive is unreadable or a member could escape ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _check_zip(zf, archive)
                for info in zf.infolist():
                    target = dest / check_member_name(info.filename, archive=archive)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
            return dest
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                _check_tar(tf, archive)
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(dest, filter="data")
                else:  # pragma: no cover - Python < 3.11.4: members were checked above
                    tf.extractall(dest)
            return dest
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise UserInputError(f"{archive}: unreadable archive ({exc})") from None
    raise UserInputError(f"{archive}: not a tar or zip archive")


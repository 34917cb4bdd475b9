"""The prepared-array cache: one folder per dataset, committed by an atomic rename.

Layout under the cache root (``root`` argument, else ``$ROBUSTATTR_DATA``, else ``~/.cache/robustattr``)::

    <root>/<dataset>/manifest.json          what was prepared, from which source, sha256 of every file
    <root>/<dataset>/<split>-images.npy     uint8 (N, C, H, W); float32 for float npz data
    <root>/npz-<digest>/, folder-<digest>/  users' own data (``data.user``), keyed by its sha256
    <root>/<dataset>/<split>-labels.npy     int64 (N,)
    <root>/sources/<dataset>/               raw files: downloads land here, users may drop files here
    <root>/trusted-sha256.json              digests recorded on first use (files with none published)

A dataset prepared with non-default parameters (augmentation seed, images per class) lives in
``<root>/<dataset>-seed<S>-per<N>``. Preparation writes into a hidden staging folder, fsyncs every
file, writes the manifest last and renames the folder into place, so an interrupted fetch leaves
nothing a later run would read. Every load re-hashes the files it opens against the manifest and
checks the labels (:func:`check_labels`: int64, one per image, each in 0..num_classes-1), as do
``data info`` and ``data fetch`` (which prepares a failing copy again). The cache's files, its
manifest and its lock files are regular files: a symbolic link among them is refused, not followed.
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from robustattr.files import atomic_write_json, fsync_dir, naming_write_errors, refuse_link, sha256_file
from robustattr.data.catalog import DATASETS
from robustattr.errors import BAD_PATH_ERRNOS, FileSystemError, UserInputError
from robustattr.json_files import FILE_NAME, INT, SHA256, STR, at_least_int, dict_of, list_of, read_json, record

__all__ = ["cache_root", "dataset_dir", "Staging", "read_manifest", "verify_files", "open_split", "MANIFEST_SHAPE",
           "check_labels", "num_classes_of"]

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1

#: A manifest as :meth:`Staging.commit` writes it. File names are bare names, so every file the
#: manifest lists lies inside its dataset folder; every split's files must be listed (and so hashed).
MANIFEST_SHAPE = record({
    "format_version": INT,
    "dataset": STR,
    "splits": dict_of(record({"images": FILE_NAME, "labels": FILE_NAME, "size": at_least_int(0)})),
    "files": dict_of(record({"sha256": SHA256, "bytes": at_least_int(0)}), key=FILE_NAME),
}, optional={"folder_of_label": list_of(INT)})


def cache_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: ``root``, else ``$ROBUSTATTR_DATA``, else ``~/.cache/robustattr``."""
    if root is None:
        root = os.environ.get("ROBUSTATTR_DATA") or Path.home() / ".cache" / "robustattr"
    return Path(root).expanduser()


def dataset_dir(root: Path, name: str, variant: str = "") -> Path:
    """The folder of one prepared dataset (``variant`` is a suffix for non-default parameters)."""
    return root / (name + variant)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The parsed manifest of a committed dataset folder, or None when there is none.

    Raises:
        UserInputError: a manifest that is damaged (not a regular file, not JSON, not of
            :data:`MANIFEST_SHAPE`), names a file outside its folder, or has another format
            version; the message names it and the repair, ``robustattr data fetch NAME``.
    """
    path = folder / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    name = folder.name.split("-seed")[0]
    fix = f"run `robustattr data fetch {name}` to prepare it again"
    manifest = read_json(path, MANIFEST_SHAPE, kind="cache manifest", fix=fix)
    if manifest["format_version"] != FORMAT_VERSION:
        raise UserInputError(f"cache manifest {path}: cache format {manifest['format_version']} is not "
                             f"{FORMAT_VERSION}; {fix}")
    for split, entry in manifest["splits"].items():
        for key in ("images", "labels"):
            if entry[key] not in manifest["files"]:
                raise UserInputError(f"cache manifest {path} is corrupt: split '{split}' names {entry[key]}, "
                                     f"which 'files' does not list with its sha256; {fix}")
    classes = num_classes_of(manifest)
    folders = manifest.get("folder_of_label")
    if folders is not None and classes is not None and (
            len(folders) != classes or any(not 0 <= f < classes for f in folders)):
        raise UserInputError(f"cache manifest {path} is corrupt: 'folder_of_label' must list {classes} folder "
                             f"numbers in 0..{classes - 1}; {fix}")
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any], names: list[str] | None = None) -> None:
    """Re-hash prepared files against the manifest.

    Raises:
        UserInputError: a file is missing or its digest differs (message: path, both digests, the fix).
    """
    fix = f"run `robustattr data fetch {manifest['dataset']}` to prepare it again"
    for fname in names if names is not None else list(manifest["files"]):
        expected = manifest["files"][fname]["sha256"]
        path = folder / fname
        refuse_link(path)
        if not path.is_file():
            raise UserInputError(f"{path}: cached file is missing; {fix}")
        actual = sha256_file(path)
        if actual != expected:
            raise UserInputError(
                f"{path}: cached file is corrupt: sha256 {actual}, manifest says {expected}; {fix}"
            )
    label_files = {entry["labels"]: entry["size"] for entry in manifest["splits"].values()}
    for fname in names if names is not None else list(manifest["files"]):
        if fname in label_files:
            try:
                labels = np.load(folder / fname, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:  # a pickled (object) array, not a .npy, ...
                _raise_if_system(exc, folder / fname)
                raise UserInputError(f"{folder / fname}: cached labels cannot be read ({exc}); {fix}") from None
            check_labels(folder / fname, labels, label_files[fname], num_classes_of(manifest), fix)


def _raise_if_system(exc: BaseException, path: Path) -> None:
    """A read the system refused (permission, I/O error) is exit 1 naming the file, not a damaged cache."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno not in BAD_PATH_ERRNOS:
        raise FileSystemError(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from None


def num_classes_of(manifest: dict[str, Any]) -> int | None:
    """The class count of the dataset a manifest describes (a built-in's, or a user's recorded one)."""
    info = DATASETS.get(manifest["dataset"])
    if info is not None:
        return info.num_classes
    facts = manifest.get("user")
    count = facts.get("num_classes") if isinstance(facts, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else None


def check_labels(path: Path, labels: np.ndarray, size: int | None, num_classes: int | None, fix: str) -> None:
    """Refuse a cached label array a model could not use: labels must be int64 (N,), N = ``size``
    (the split's image count), each in ``0..num_classes-1`` (unchecked when ``num_classes`` is None).

    Raises:
        UserInputError: one line naming ``path``, what is wrong, and ``fix``.
    """
    if labels.dtype != np.int64 or labels.ndim != 1:
        raise UserInputError(f"{path}: cached labels are {labels.dtype} {tuple(labels.shape)}, not int64 (N,); {fix}")
    if size is not None and labels.shape[0] != size:
        raise UserInputError(f"{path}: {labels.shape[0]} cached labels for {size} images; {fix}")
    if num_classes is not None and labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise UserInputError(f"{path}: cached label {bad} is outside 0..{num_classes - 1} (the dataset's "
                                 f"{num_classes} classes); {fix}")


def open_split(folder: Path, manifest: dict[str, Any], split: str, *, verify: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Verify and memory-map one split: images uint8 (float32 for float user data) (N, C, H, W), labels int64 (N,).

    The arrays are copy-on-write maps: writes stay in memory and never reach the cache.
    """
    entry = manifest["splits"][split]
    names = [entry["images"], entry["labels"]]
    if verify:
        verify_files(folder, manifest, names)
    for fname in names:
        refuse_link(folder / fname)
    try:
        images = np.load(folder / entry["images"], mmap_mode="c", allow_pickle=False)
        labels = np.load(folder / entry["labels"], mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError) as exc:
        _raise_if_system(exc, folder)
        raise UserInputError(f"{folder}: cannot read split '{split}' ({exc}); run `robustattr data fetch` again") from None
    if images.dtype not in (np.uint8, np.float32) or images.ndim != 4 or labels.dtype != np.int64 \
            or labels.shape != images.shape[:1]:
        raise UserInputError(
            f"{folder / entry['images']}: unexpected arrays {images.dtype}{images.shape} / "
            f"{labels.dtype}{labels.shape}; run `robustattr data fetch {manifest['dataset']}` again"
        )
    if not verify:  # verify_files checked them already
        check_labels(folder / entry["labels"], labels, entry["size"], num_classes_of(manifest),
                     f"run `robustattr data fetch {manifest['dataset']}` again")
    return images, labels


class Staging:
    """A hidden folder filled with prepared arrays, then committed into place atomically."""

    def __init__(self, root: Path, folder_name: str) -> None:
        self.root = root
        self.final = root / folder_name
        self.path = root / f".{folder_name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with naming_write_errors(self.path):
            self.path.mkdir(parents=True)
        self.splits: dict[str, dict[str, Any]] = {}

    @staticmethod
    def clean_stale(root: Path, folder_name: str) -> None:
        """Remove staging/old folders a killed fetch left behind (call under the dataset lock)."""
        for p in root.glob(f".{folder_name}.*"):
            if p.is_dir() and (".staging-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)

    def new_images(self, split: str, shape: tuple[int, ...]) -> np.ndarray:
        """A writable uint8 memory map of ``shape`` (N, C, H, W) for ``split``, to fill in chunks."""
        path = self.path / f"{split}-images.npy"
        with naming_write_errors(path):
            images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
            # Reserve the blocks now: on a full disk, a write into a sparse memory map is a SIGBUS
            # later; here it is an error naming the file.
            with open(path, "r+b") as f:
                try:
                    os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
            return images

    def add_split(self, split: str, images: np.ndarray | None, labels: np.ndarray) -> None:
        """Record a split: ``images`` uint8 (N, C, H, W) (None if filled via :meth:`new_images`)."""
        img_path = self.path / f"{split}-images.npy"
        if images is not None:
            if images.dtype not in (np.uint8, np.float32) or images.ndim != 4:
                raise ValueError(f"{split}: images must be uint8 or float32 (N, C, H, W), got {images.dtype}{images.shape}")
            with naming_write_errors(img_path), open(img_path, "wb") as f:
                np.save(f, np.ascontiguousarray(images), allow_pickle=False)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        labels_path = self.path / f"{split}-labels.npy"
        with naming_write_errors(labels_path), open(labels_path, "wb") as f:
            np.save(f, labels, allow_pickle=False)
        n = np.load(img_path, mmap_mode="r").shape[0]
        if n != labels.shape[0]:
            raise ValueError(f"{split}: {n} images but {labels.shape[0]} labels")
        self.splits[split] = {"images": img_path.name, "labels": f"{split}-labels.npy", "size": int(n)}

    def commit(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Hash and fsync every file, write the manifest last, rename the folder into place."""
        files = {}
        for entry in self.splits.values():
            for key in ("images", "labels"):
                path = self.path / entry[key]
                with naming_write_errors(path), open(path, "rb+") as f:
                    os.fsync(f.fileno())
                files[entry[key]] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        manifest = {
            "format_version": FORMAT_VERSION,
            **meta,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "splits": self.splits,
            "files": files,
        }
        atomic_write_json(self.path / MANIFEST, manifest)
        fsync_dir(self.path)
        old = None
        with naming_write_errors(self.final):
            if self.final.exists() or self.final.is_symlink():
                old = self.root / f".{self.final.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(self.final, old)
            os.replace(self.path, self.final)
        fsync_dir(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log.info("prepared %s in %s", meta.get("dataset"), self.final)
        return manifest

    def discard(self) -> None:
        """Delete the staging folder (after a failure)."""
        shutil.rmtree(self.path, ignore_errors=True)

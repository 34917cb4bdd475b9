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
nothing a later run would read. Every load re-hashes the files it opens against the manifest.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from robustattr.data._io import atomic_write_json, fsync_dir, sha256_file
from robustattr.errors import UserInputError

__all__ = ["cache_root", "dataset_dir", "Staging", "read_manifest", "verify_files", "open_split"]

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def cache_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: ``root``, else ``$ROBUSTATTR_DATA``, else ``~/.cache/robustattr``."""
    if root is None:
        root = os.environ.get("ROBUSTATTR_DATA") or Path.home() / ".cache" / "robustattr"
    return Path(root).expanduser()


def dataset_dir(root: Path, name: str, variant: str = "") -> Path:
    """The folder of one prepared dataset (``variant`` is a suffix for non-default parameters)."""
    return root / (name + variant)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The parsed manifest of a committed dataset folder, or None when there is none."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: unreadable manifest ({exc}); run `robustattr data fetch` again") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserInputError(
            f"{path}: cache format {manifest.get('format_version')} is not {FORMAT_VERSION}; "
            f"run `robustattr data fetch {manifest.get('dataset', 'NAME')}` again"
        )
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
        if not path.is_file():
            raise UserInputError(f"{path}: cached file is missing; {fix}")
        actual = sha256_file(path)
        if actual != expected:
            raise UserInputError(
                f"{path}: cached file is corrupt: sha256 {actual}, manifest says {expected}; {fix}"
            )


def open_split(folder: Path, manifest: dict[str, Any], split: str, *, verify: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Verify and memory-map one split: images uint8 (float32 for float user data) (N, C, H, W), labels int64 (N,).

    The arrays are copy-on-write maps: writes stay in memory and never reach the cache.
    """
    entry = manifest["splits"][split]
    names = [entry["images"], entry["labels"]]
    if verify:
        verify_files(folder, manifest, names)
    try:
        images = np.load(folder / entry["images"], mmap_mode="c", allow_pickle=False)
        labels = np.load(folder / entry["labels"], mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{folder}: cannot read split '{split}' ({exc}); run `robustattr data fetch` again") from None
    if images.dtype not in (np.uint8, np.float32) or images.ndim != 4 or labels.dtype != np.int64 \
            or labels.shape != images.shape[:1]:
        raise UserInputError(
            f"{folder / entry['images']}: unexpected arrays {images.dtype}{images.shape} / "
            f"{labels.dtype}{labels.shape}; run `robustattr data fetch {manifest['dataset']}` again"
        )
    return images, labels


class Staging:
    """A hidden folder filled with prepared arrays, then committed into place atomically."""

    def __init__(self, root: Path, folder_name: str) -> None:
        self.root = root
        self.final = root / folder_name
        self.path = root / f".{folder_name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)

    def add_split(self, split: str, images: np.ndarray | None, labels: np.ndarray) -> None:
        """Record a split: ``images`` uint8 (N, C, H, W) (None if filled via :meth:`new_images`)."""
        img_path = self.path / f"{split}-images.npy"
        if images is not None:
            if images.dtype not in (np.uint8, np.float32) or images.ndim != 4:
                raise ValueError(f"{split}: images must be uint8 or float32 (N, C, H, W), got {images.dtype}{images.shape}")
            with open(img_path, "wb") as f:
                np.save(f, np.ascontiguousarray(images), allow_pickle=False)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        with open(self.path / f"{split}-labels.npy", "wb") as f:
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
                with open(path, "rb+") as f:
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
        if self.final.exists():
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

"""Public entry points of the data layer: :func:`load`, :func:`fetch`, :func:`describe`, :class:`ImageSplit`."""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustattr.data import cache, user
from robustattr.files import file_lock, remove_stale_partials
from robustattr.data.catalog import DATASETS, DatasetInfo, get_info
from robustattr.data.sources import first_working
from robustattr.errors import LinkRefusedError, UserInputError, did_you_mean

__all__ = ["ImageSplit", "load", "fetch", "describe", "dataset_info"]

log = logging.getLogger(__name__)
LABEL_ORDERS = ("original", "numeric")
PathLike = str | os.PathLike[str]


@dataclass(frozen=True, repr=False, eq=False)
class ImageSplit:
    """One split of a prepared dataset, memory-mapped from the cache.

    Attributes:
        images: uint8 (N, C, H, W), the stored pixels (float32 for float ``npz:`` data).
        labels: int64 (N,) in [0, info.num_classes).
        info: the dataset's :class:`~robustattr.data.catalog.DatasetInfo`.
        split: "train", "validation" or "test".
    """

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"ImageSplit({self.info.name!r}, {self.split!r}, images={tuple(self.images.shape)})"

    @property
    def value_range(self) -> tuple[float, float]:
        """(low, high) of :meth:`batch`'s pixels: (0, 1) for MNIST/Fashion-MNIST, (0, 255) otherwise."""
        return self.info.value_range

    def batch(self, index: torch.Tensor | slice | list[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at ``index`` (a LongTensor or a slice).

        Returns:
            x: float32 (B, C, H, W) in ``value_range``: uint8 · float32(1/255) for [0, 1] datasets (the
            TF reader's values, max exactly 1.0), the uint8 values as floats for [0, 255] datasets,
            low + v·(high − low)/255 for another ``pixel_range``, float user data as stored.
            y: int64 (B,).
        """
        if isinstance(index, (list, np.ndarray)):
            index = torch.as_tensor(index, dtype=torch.long)
        x = self.images[index].to(torch.float32)
        if self.images.dtype != torch.uint8:  # float user data: already in value_range
            return x, self.labels[index]
        low, high = self.info.value_range
        if (low, high) == (0.0, 1.0):
            x = x.mul_(1.0 / 255.0)
        elif (low, high) != (0.0, 255.0):  # a user's pixel_range: 0..255 onto low..high
            x = x.mul_((high - low) / 255.0).add_(low)
        return x, self.labels[index]


def _params(name: str, seed: int | None, train_per_class: int | None) -> tuple[dict[str, Any], str]:
    """Resolved preparation parameters and the cache-folder suffix (empty for the defaults)."""
    for key, value in (("seed", seed), ("train_per_class", train_per_class)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "train_per_class" else 0)):
            raise UserInputError(f"{key}={value!r} must be an integer ≥ {1 if key == 'train_per_class' else 0}")
    defaults = _module(name).PREPARE_DEFAULTS
    if not defaults:  # no augmentation: seed and train_per_class do not apply
        return {}, ""
    p = {"seed": defaults["seed"] if seed is None else seed, "per_class": train_per_class or defaults["per_class"]}
    default = p == defaults
    suffix = "" if default else f"-seed{'shuffle' if p['seed'] is None else p['seed']}-per{p['per_class']}"
    return p, suffix


def _summary(name: str, folder: Path, manifest: dict[str, Any], status: str) -> dict[str, Any]:
    out = {
        "name": name,
        "status": status,
        "cache_dir": str(folder),
        "source": manifest.get("source"),
        "source_files": manifest.get("source_files", {}),
        "source_digests": manifest.get("source_digests"),
        "splits": {s: e["size"] for s, e in manifest["splits"].items()},
        "files": {f: e["sha256"] for f, e in manifest["files"].items()},
        "created": manifest.get("created"),
    }
    if manifest.get("params"):
        out["params"] = manifest["params"]
    return out


def fetch(name: str, root: PathLike | None = None, source_dir: PathLike | None = None, *,
          seed: int | None = None, train_per_class: int | None = None, force: bool = False) -> dict[str, Any]:
    """Prepare ``name`` into the cache unless a verified copy is already there.

    Args:
        name: "mnist", "fashion-mnist", "gtsrb" or "flower17".
        root: cache root (default ``$ROBUSTATTR_DATA``, else ``~/.cache/robustattr``).
        source_dir: a folder with raw files the user already has (tried first).
        seed: augmentation seed (GTSRB default 216105420; Flower default: continue the shuffle's
            generator, as the original). Ignored by MNIST/Fashion-MNIST.
        train_per_class: balanced training images per class (GTSRB 10,000, Flower 1,000).
        force: prepare again even when the cache verifies.

    Returns:
        JSON-able dict: name, status ("prepared" or "cached"), cache_dir, source, source_files
        (raw file -> sha256), splits (split -> size), files (prepared file -> sha256).
        A cache whose files fail their digests is replaced (with a warning).
    """
    get_info(name)
    params, suffix = _params(name, seed, train_per_class)
    root_path = cache.cache_root(root)
    root_path.mkdir(parents=True, exist_ok=True)
    folder_name = name + suffix
    folder = root_path / folder_name
    with file_lock(root_path / f".{folder_name}.lock"):
        if not force:
            try:
                manifest = cache.read_manifest(folder)
                if manifest is not None:
                    cache.verify_files(folder, manifest)
                    return _summary(name, folder, manifest, "cached")
            except LinkRefusedError:
                raise  # a link is refused, never replaced (its target stays as it is)
            except UserInputError as exc:
                log.warning("%s: replacing the cached copy: %s", name, exc)
        cache.Staging.clean_stale(root_path, folder_name)
        remove_stale_partials(root_path / "sources" / name)  # downloads a killed fetch left half done
        src_dir = Path(source_dir).expanduser() if source_dir is not None else None
        module = _module(name)
        src, raw = first_working(name, *module.sources(name, root_path, src_dir))
        staging = cache.Staging(root_path, folder_name)
        try:
            meta: dict[str, Any] = module.prepare(raw, staging, **params)
            source_files = getattr(raw, "files", {})  # raw file -> sha256, where the source reads files
            manifest = staging.commit({"dataset": name, "source": src.label, "source_files": source_files, **meta})
        except BaseException:
            staging.discard()
            raise
        del raw
    return _summary(name, folder, manifest, "prepared")


def load(name: str, split: str, *, root: PathLike | None = None, source_dir: PathLike | None = None,
         label_order: str = "original", seed: int | None = None, train_per_class: int | None = None,
         verify: bool = True, pixel_range: tuple[float, float] | None = None,
         image_size: tuple[int, int] | None = None) -> ImageSplit:
    """Load one split from the cache, preparing the dataset first (:func:`fetch`) if it is not there.

    Args:
        name, root, source_dir, seed, train_per_class: as :func:`fetch`.
        split: "train", "validation" (first 5,000 training images for MNIST/Fashion-MNIST; Udacity's
            valid.p for GTSRB; none for Flower-17) or "test" (file order).
        label_order: "original" (faithful: Flower-17 labels are ranks of string-sorted folder names)
            or "numeric" (Flower-17 label = folder number). Same for the other datasets.
        verify: re-hash the split's files against the manifest (on by default).
        pixel_range, image_size: for ``npz:PATH`` / ``folder:PATH`` names (``data.user``): the model's
            pixel range (default [0, 1]) and the folder images' (H, W).

    Returns:
        :class:`ImageSplit` with images uint8 (N, C, H, W), labels int64 (N,).

    Raises:
        UserInputError: unknown name/split/label order, no working source, or a corrupt cache
        (naming the file and both digests, and the ``robustattr data fetch NAME`` that repairs it).
    """
    if user.is_user_dataset(name):
        folder, manifest = user.prepare(name, root, image_size)
        info = user.user_info(name, manifest, pixel_range)
        if split not in manifest["splits"]:
            raise UserInputError(f"dataset '{name}' has no split '{split}'; choose from train, test")
        images, labels = cache.open_split(folder, manifest, split, verify=verify)
        return ImageSplit(torch.from_numpy(images), torch.from_numpy(np.asarray(labels)), info, split)
    info = _builtin_info(name, pixel_range)
    if split not in info.split_sizes:
        raise UserInputError(f"dataset '{name}' has no split '{split}'{did_you_mean(split, info.split_sizes)}; "
                             f"choose from {', '.join(info.split_sizes)}")
    if label_order not in LABEL_ORDERS:
        raise UserInputError(f"label_order '{label_order}' unsupported; choose from {', '.join(LABEL_ORDERS)}")
    _, suffix = _params(name, seed, train_per_class)
    folder = cache.cache_root(root) / (name + suffix)
    manifest = cache.read_manifest(folder)
    if manifest is None:
        fetch(name, root, source_dir, seed=seed, train_per_class=train_per_class)
        manifest = cache.read_manifest(folder)
        if manifest is None:  # another process removed it meanwhile
            raise UserInputError(f"{folder}: no prepared data after fetch; run `robustattr data fetch {name}`")
    if split not in manifest["splits"]:
        raise UserInputError(f"{folder}: the {manifest.get('raw_format', name)} source has no split '{split}'; "
                             f"choose from {', '.join(manifest['splits'])}")
    images, labels = cache.open_split(folder, manifest, split, verify=verify)
    if label_order == "numeric" and "folder_of_label" in manifest:
        labels = np.asarray(manifest["folder_of_label"], np.int64)[labels]
    return ImageSplit(torch.from_numpy(images), torch.from_numpy(np.asarray(labels)), info, split)


def dataset_info(name: str, *, root: PathLike | None = None, pixel_range: tuple[float, float] | None = None,
                 image_size: tuple[int, int] | None = None) -> DatasetInfo:
    """:func:`get_info` for every dataset name: a user's ``npz:``/``folder:`` data is prepared (cached)
    and read for its facts; ``pixel_range`` must match a built-in dataset's range if given."""
    if user.is_user_dataset(name):
        return user.user_info(name, user.prepare(name, root, image_size)[1], pixel_range)
    return _builtin_info(name, pixel_range)


def _builtin_info(name: str, pixel_range: tuple[float, float] | None) -> DatasetInfo:
    info = get_info(name)
    if pixel_range is not None and tuple(pixel_range) != info.value_range:
        raise UserInputError(f"pixel_range {list(pixel_range)} does not fit dataset '{name}', whose pixels are "
                             f"{list(info.value_range)}; leave pixel_range unset for the built-in datasets")
    return info


def describe(name: str | None = None, root: PathLike | None = None) -> list[dict[str, Any]]:
    """Where each dataset is cached, its split sizes and checksums (files re-hashed).

    Returns:
        One JSON-able dict per dataset (and per non-default variant found): ``cached`` True with the
        :func:`fetch` summary fields, or ``cached`` False with ``expected_splits`` and ``how_to_fetch``.

    Raises:
        UserInputError: a cached file fails its digest (naming the file, both digests and the fix).
    """
    names = [get_info(name).name] if name is not None else list(DATASETS)
    root_path = cache.cache_root(root)
    out = []
    for n in names:
        folders = [root_path / n] + sorted(p for p in root_path.glob(f"{n}-seed*") if p.is_dir())
        for folder in folders:
            manifest = cache.read_manifest(folder)
            if manifest is None:
                if folder == root_path / n:
                    out.append({"name": n, "cached": False, "cache_dir": str(folder),
                                "expected_splits": dict(get_info(n).split_sizes),
                                "how_to_fetch": _how_to(n).format(drop=root_path / "sources" / n)})
                continue
            cache.verify_files(folder, manifest)
            out.append({"cached": True, **_summary(n, folder, manifest, "ok")})
    return out


def _module(name: str) -> Any:
    """The dataset's module (the catalog's ``module``), which fetches and prepares it."""
    return importlib.import_module(get_info(name).module)


def _how_to(name: str) -> str:
    how = _module(name).HOW_TO
    return how[name] if isinstance(how, dict) else how

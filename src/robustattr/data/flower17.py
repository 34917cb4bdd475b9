"""Oxford 17 Category Flowers (17 classes, 128×128 RGB): source, parser, preparation (spec §1.4).

``17flowers.tgz`` (from ``source_dir``, ``<root>/sources/flower17/`` or the Oxford URL; an already
extracted ``jpg/`` folder works too) holds ``jpg/image_0001.jpg`` … ``image_1360.jpg``: 80
consecutive images per class. No digest is published: the archive's SHA-256 is recorded on first
use and checked afterwards.

Preparation, as the original: image i goes to folder ``(i-1) // 80``; each JPEG is resized
directly to 128×128 (Lanczos), /255 in float32; the whole set is shuffled by
``RandomState(4557077).permutation``; per class the first 72 images in shuffled order are train,
the other 8 test; ×255 and truncation back to uint8; the training set is balanced to 1,000 per class
by the augmentation of :mod:`robustattr.data.augment`, its random numbers continuing from the
shuffle's generator (``seed=None``) or from ``RandomState(seed)``. No histogram equalisation.

Labels: the original lists the class folders with a *string* sort (0, 1, 10, 11, …, 16, 2, …, 9), so
label = rank in that order, not the folder number. The cache stores these faithful labels and
``FOLDER_OF_LABEL``; ``load(..., label_order="numeric")`` maps them to folder numbers (the fix).
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from robustattr.data import augment
from robustattr.files import sha256_file
from robustattr.data.archives import safe_extract
from robustattr.data.cache import Staging
from robustattr.data.sources import Source, SourceMissing, TrustStore, http_download
from robustattr.errors import UserInputError

__all__ = ["RawFlower", "sources", "prepare", "read_jpg_folder", "folder_of_label", "URL"]

log = logging.getLogger(__name__)

URL = "http://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz"
TGZ_NAME = "17flowers.tgz"
PER_CLASS = 80
TEST_PER_CLASS = 8
SIZE = 128
SHUFFLE_SEED = 4557077
DEFAULT_PER_CLASS = 1_000
_NAME = re.compile(r"^image_(\d{4})\.jpg$")
HINT = ("Put 17flowers.tgz (from {url}) or its extracted jpg/ folder into {drop}, or pass source_dir "
        "(config key data_path), then run `robustattr data fetch flower17`.")
#: Preparation parameters and their defaults (``data fetch --seed/--train-per-class``).
PREPARE_DEFAULTS = {"seed": None, "per_class": DEFAULT_PER_CLASS}
#: What ``data info`` tells a user whose cache lacks the dataset ({drop}: the cache's drop folder).
HOW_TO = HINT.format(url=URL, drop="{drop}")


def folder_of_label(num_classes: int = 17) -> list[int]:
    """Folder number of each faithful label: the string-sorted folder names ("0", "1", "10", …)."""
    return [int(s) for s in sorted(str(i) for i in range(num_classes))]


class RawFlower(NamedTuple):
    """Resized images uint8 (N, 128, 128, 3) in folder-listing order, faithful labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    files: dict[str, str]


def read_jpg_folder(jpg: Path) -> RawFlower:
    """Read ``image_0001.jpg`` … from ``jpg`` (a multiple of 80 consecutive files) and resize them."""
    numbers = sorted(int(m.group(1)) for p in jpg.iterdir() if (m := _NAME.match(p.name)))
    if not numbers:
        raise SourceMissing(f"no image_NNNN.jpg files in {jpg}")
    if numbers != list(range(1, len(numbers) + 1)) or len(numbers) % PER_CLASS:
        raise UserInputError(
            f"{jpg}: expected image_0001.jpg … image_N.jpg, N a multiple of {PER_CLASS}; found {len(numbers)} "
            f"files numbered {numbers[0]}…{numbers[-1]}"
        )
    num_classes = len(numbers) // PER_CLASS
    order = []  # (file number, label): folders in string-sorted order, files sorted within
    for label, folder in enumerate(folder_of_label(num_classes)):
        order += [(folder * PER_CLASS + k + 1, label) for k in range(PER_CLASS)]
    images = np.empty((len(order), SIZE, SIZE, 3), np.uint8)
    for i, (num, _) in enumerate(tqdm(order, desc="flower17 resize", unit="img", disable=None)):
        path = jpg / f"image_{num:04d}.jpg"
        try:
            with Image.open(path) as img:
                small = img.convert("RGB").resize((SIZE, SIZE), Image.LANCZOS)
        except OSError as exc:
            raise UserInputError(f"{path}: unreadable image ({exc})") from None
        x = np.asarray(small, dtype=np.float32) / np.float32(255.0)  # the original's float pixels
        images[i] = (x * np.float32(255.0)).astype(np.uint8)  # ×255, truncation (exact for all 256 values)
    labels = np.array([lab for _, lab in order], np.int64)
    return RawFlower(images, labels, num_classes, {})


def _load_local(folder: Path, root: Path, trust: TrustStore) -> RawFlower:
    if not folder.is_dir():
        raise SourceMissing(f"no folder {folder}")
    tgz = folder / TGZ_NAME
    if not tgz.is_file():
        for jpg in (folder / "jpg", folder):
            if jpg.is_dir() and any(_NAME.match(p.name) for p in jpg.iterdir()):
                return read_jpg_folder(jpg)
        raise SourceMissing(f"no {TGZ_NAME} or jpg/image_NNNN.jpg files in {folder}")
    digest = sha256_file(tgz)
    trust.check(f"flower17/{TGZ_NAME}", digest, str(tgz))
    with tempfile.TemporaryDirectory(prefix=".flower17-", dir=root) as tmp:
        safe_extract(tgz, tmp)
        found = [p for p in Path(tmp).rglob("jpg") if p.is_dir()]
        if not found:
            raise UserInputError(f"{tgz}: no jpg/ folder inside")
        raw = read_jpg_folder(found[0])
    trust.record(f"flower17/{TGZ_NAME}", digest, str(tgz))
    return raw._replace(files={TGZ_NAME: digest})


def sources(name: str, root: Path, source_dir: Path | None) -> tuple[list[Source[RawFlower]], str]:
    """The ordered sources and the hint shown when all fail."""
    trust = TrustStore(root)
    drop = root / "sources" / "flower17"
    out: list[Source[RawFlower]] = []
    if source_dir is not None:
        out.append(Source(f"source_dir {source_dir}", lambda: _load_local(Path(source_dir), root, trust)))
    out.append(Source(f"cache folder {drop}", lambda: _load_local(drop, root, trust)))

    def from_url() -> RawFlower:
        http_download(URL, drop / TGZ_NAME)
        return _load_local(drop, root, trust)

    out.append(Source(f"URL {URL}", from_url))
    return out, HINT.format(url=URL, drop=drop)


def prepare(raw: RawFlower, staging: Staging, *, seed: int | None, per_class: int) -> dict[str, Any]:
    """Shuffle, split 72/8 per class, balance/augment train; write into ``staging``.

    Returns:
        Manifest fields: ``params`` and ``folder_of_label``.
    """
    rng = np.random.RandomState(SHUFFLE_SEED)
    perm = rng.permutation(len(raw.labels))
    images, labels = raw.images[perm], raw.labels[perm]
    seen = np.zeros(raw.num_classes, np.int64)
    is_train = np.zeros(len(labels), bool)
    for i, lab in enumerate(labels):  # walk the shuffled set: first 72 of each class -> train
        is_train[i] = seen[lab] < PER_CLASS - TEST_PER_CLASS
        seen[lab] += 1
    train_x = np.ascontiguousarray(images[is_train].transpose(0, 3, 1, 2))
    train_y = labels[is_train]
    if seed is not None:
        rng = np.random.RandomState(seed)
    total = int(np.maximum(np.bincount(train_y, minlength=raw.num_classes), per_class).sum())
    out = staging.new_images("train", (total, 3, SIZE, SIZE))
    _, out_labels = augment.balance(train_x, train_y, per_class, rng, out=out, desc="flower17 augment")
    out.flush()
    del out
    staging.add_split("train", None, out_labels)
    staging.add_split("test", np.ascontiguousarray(images[~is_train].transpose(0, 3, 1, 2)), labels[~is_train])
    return {
        "params": {"seed": seed, "train_per_class": per_class, "shuffle_seed": SHUFFLE_SEED},
        "folder_of_label": folder_of_label(raw.num_classes),
        "source_digests": "recorded on first use" if raw.files else "none (loose image files)",
    }

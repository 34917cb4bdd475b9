"""GTSRB (43 classes, 32×32 RGB): sources, parsers and the original's preparation (spec §1.3).

Formats read, from ``source_dir`` then ``<root>/sources/gtsrb/`` then the original's URL:

* the Udacity pickle bundle the original used: ``train.p``, ``valid.p``, ``test.p`` (dicts with
  ``features`` uint8 (N, 32, 32, 3) RGB and ``labels``), loose or inside ``traffic-signs-data.zip``.
  No digest is published: each file's SHA-256 is recorded on first use and checked afterwards.
  Pickles are opened only with :func:`~robustattr.data.safe_pickle.loads_arrays`.
* the official GTSRB archives (folders or their zips): ``Final_Training/Images/<class>/*.ppm`` with
  ``GT-<class>.csv`` and ``Final_Test/Images/*.ppm`` with ``GT-final_test.csv``; each whole image is
  resized to 32×32 (bilinear), as in the pickles. This format has no validation split.

Preparation: the training set is balanced to ``per_class`` images per class by the seeded
augmentation of :mod:`robustattr.data.augment`, then every split is histogram-equalised per channel.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from robustattr.data import augment, equalize
from robustattr.files import sha256_file
from robustattr.data.archives import safe_extract
from robustattr.data.cache import Staging
from robustattr.data.safe_pickle import loads_arrays
from robustattr.data.sources import Source, SourceError, SourceMissing, TrustStore, http_download
from robustattr.errors import UserInputError

__all__ = ["RawGtsrb", "sources", "prepare", "read_pickle_bundle", "read_official", "URL", "DEFAULT_SEED"]

log = logging.getLogger(__name__)

URL = "https://d17h27t6h515a5.cloudfront.net/topher/2017/February/5898cd6f_traffic-signs-data/traffic-signs-data.zip"
ZIP_NAME = "traffic-signs-data.zip"
PICKLES = {"train": "train.p", "validation": "valid.p", "test": "test.p"}
OFFICIAL_ZIPS = ("GTSRB_Final_Training_Images.zip", "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_GT.zip")
NUM_CLASSES = 43
DEFAULT_SEED = 216105420  # the GTSRB configs' np_random_seed
DEFAULT_PER_CLASS = 10_000
HINT = ("Put train.p, valid.p and test.p (or traffic-signs-data.zip from {url}, or the official "
        "GTSRB_Final_Training_Images / Final_Test folders or zips) into {drop}, or pass source_dir "
        "(config key data_path), then run `robustattr data fetch gtsrb`.")
#: Preparation parameters and their defaults (``data fetch --seed/--train-per-class``).
PREPARE_DEFAULTS = {"seed": DEFAULT_SEED, "per_class": DEFAULT_PER_CLASS}
#: What ``data info`` tells a user whose cache lacks the dataset ({drop}: the cache's drop folder).
HOW_TO = HINT.format(url=URL, drop="{drop}")


class RawGtsrb(NamedTuple):
    """Raw splits: name -> (images uint8 (N, 32, 32, 3) RGB, labels int64 (N,)), plus verified digests."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    files: dict[str, str]
    format: str


def _checked_split(obj: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict) or "features" not in obj or "labels" not in obj:
        raise UserInputError(f"{where}: expected a dict with 'features' and 'labels'")
    x, y = obj["features"], np.asarray(obj["labels"])
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise UserInputError(f"{where}: 'features' must be uint8 (N, 32, 32, 3), got {getattr(x, 'dtype', type(x))}"
                             f"{getattr(x, 'shape', '')}")
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= NUM_CLASSES)):
        raise UserInputError(f"{where}: 'labels' must be {x.shape[0]} integers in [0, {NUM_CLASSES})")
    return x, y.astype(np.int64)


def read_pickle_bundle(folder: Path, trust: TrustStore | None = None) -> RawGtsrb:
    """Read ``train.p``, ``valid.p``, ``test.p`` from ``folder`` (digests checked/recorded when ``trust``)."""
    paths = {split: folder / name for split, name in PICKLES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise SourceMissing(f"missing {', '.join(missing)} in {folder}")
    digests = {p.name: sha256_file(p) for p in paths.values()}
    if trust is not None:
        for p in paths.values():
            trust.check(f"gtsrb/{p.name}", digests[p.name], str(p))
    splits = {split: _checked_split(loads_arrays(p.read_bytes(), source=str(p)), str(p)) for split, p in paths.items()}
    if trust is not None:
        for p in paths.values():
            trust.record(f"gtsrb/{p.name}", digests[p.name], str(p))
    return RawGtsrb(splits, digests, "udacity-pickles")


def _read_csv(path: Path, need_class: bool = True) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: unreadable CSV ({exc})") from None
    cols = {"Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"} | ({"ClassId"} if need_class else set())
    if rows and not cols <= set(rows[0]):
        raise UserInputError(f"{path}: missing columns {sorted(cols - set(rows[0]))}")
    return rows


def _read_ppm_rows(folder: Path, rows: list[dict[str, str]], csv_path: Path, crop_roi: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for i, row in enumerate(rows, 2):
        try:
            label = int(row["ClassId"])
            box = [int(row[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2")]
            if not 0 <= label < NUM_CLASSES:
                raise ValueError(f"ClassId {label} not in [0, {NUM_CLASSES})")
            name = row["Filename"]
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"file name {name!r}")
            with Image.open(folder / name) as img:
                img = img.convert("RGB")
                if crop_roi:
                    img = img.crop((box[0], box[1], box[2] + 1, box[3] + 1))
                images.append(np.asarray(img.resize((32, 32), Image.BILINEAR), dtype=np.uint8))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise UserInputError(f"{csv_path}: line {i}: {exc}") from None
        labels.append(label)
    return np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8), np.asarray(labels, np.int64)


def read_official(folder: Path, *, crop_roi: bool = False) -> RawGtsrb:
    """Read the official layout found anywhere below ``folder`` (train and test; no validation)."""
    train_dirs = [p for p in folder.rglob("Final_Training/Images") if p.is_dir()]
    test_csvs = sorted(folder.rglob("GT-final_test.csv"))
    test_dirs = [p for p in folder.rglob("Final_Test/Images") if p.is_dir()]
    if not train_dirs or not test_csvs or not test_dirs:
        raise SourceMissing(f"no Final_Training/Images, Final_Test/Images and GT-final_test.csv below {folder}")
    xs, ys = [], []
    for class_dir in sorted(p for p in train_dirs[0].iterdir() if p.is_dir()):
        csv_path = class_dir / f"GT-{class_dir.name}.csv"
        if not csv_path.is_file():
            raise UserInputError(f"{class_dir}: missing {csv_path.name}")
        x, y = _read_ppm_rows(class_dir, _read_csv(csv_path), csv_path, crop_roi)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise SourceError(f"{train_dirs[0]}: no class folders")
    test = _read_ppm_rows(test_dirs[0], _read_csv(test_csvs[0]), test_csvs[0], crop_roi)
    return RawGtsrb({"train": (np.concatenate(xs), np.concatenate(ys)), "test": test}, {}, "gtsrb-official")


def _load_local(folder: Path, root: Path, trust: TrustStore) -> RawGtsrb:
    if not folder.is_dir():
        raise SourceMissing(f"no folder {folder}")
    if all((folder / n).is_file() for n in PICKLES.values()):
        return read_pickle_bundle(folder, trust)
    zips = [folder / n for n in (ZIP_NAME, *OFFICIAL_ZIPS) if (folder / n).is_file()]
    if not zips:
        try:
            return read_official(folder)
        except SourceError:
            raise SourceMissing(f"no train.p/valid.p/test.p, {ZIP_NAME} or official GTSRB files in {folder}") from None
    with tempfile.TemporaryDirectory(prefix=".gtsrb-", dir=root) as tmp:
        digests = {}
        for z in zips:
            digests[z.name] = sha256_file(z)
            trust.check(f"gtsrb/{z.name}", digests[z.name], str(z))
            safe_extract(z, tmp)
        if zips[0].name == ZIP_NAME:
            found = [p.parent for p in Path(tmp).rglob("train.p")]
            raw = read_pickle_bundle(found[0] if found else Path(tmp))
        else:
            raw = read_official(Path(tmp))
        for z in zips:
            trust.record(f"gtsrb/{z.name}", digests[z.name], str(z))
    return raw._replace(files={**digests, **raw.files})


def sources(name: str, root: Path, source_dir: Path | None) -> tuple[list[Source[RawGtsrb]], str]:
    """The ordered sources and the hint shown when all fail."""
    trust = TrustStore(root)
    drop = root / "sources" / "gtsrb"
    out: list[Source[RawGtsrb]] = []
    if source_dir is not None:
        out.append(Source(f"source_dir {source_dir}", lambda: _load_local(Path(source_dir), root, trust)))
    out.append(Source(f"cache folder {drop}", lambda: _load_local(drop, root, trust)))

    def from_url() -> RawGtsrb:
        http_download(URL, drop / ZIP_NAME)
        return _load_local(drop, root, trust)

    out.append(Source(f"URL {URL}", from_url))
    return out, HINT.format(url=URL, drop=drop)


def prepare(raw: RawGtsrb, staging: Staging, *, seed: int, per_class: int) -> dict[str, Any]:
    """Balance/augment train (seeded), equalise every split, write them into ``staging``.

    Returns:
        Manifest fields: ``params`` and ``raw_format``.
    """
    x, y = raw.splits["train"]
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < NUM_CLASSES:
        log.warning("gtsrb: only %d of %d classes have training images", len(classes), NUM_CLASSES)
    total = int(np.maximum(counts, per_class).sum())
    out = staging.new_images("train", (total, 3, 32, 32))
    _, labels = augment.balance(x, y, per_class, np.random.RandomState(seed), out=out, desc="gtsrb augment")
    step = 8192
    for start in range(0, total, step):
        out[start:start + step] = equalize.equalize_hist(np.asarray(out[start:start + step]))
    out.flush()
    del out
    staging.add_split("train", None, labels)
    for split in ("validation", "test"):
        if split in raw.splits:
            xs, ys = raw.splits[split]
            staging.add_split(split, equalize.equalize_hist(np.ascontiguousarray(xs.transpose(0, 3, 1, 2))), ys)
    meta = {"params": {"seed": seed, "train_per_class": per_class}, "raw_format": raw.format}
    meta["source_digests"] = "recorded on first use" if raw.files else "none (loose image files)"
    return meta

"""Writers of small files in the real raw formats (GTSRB pickles/PPM+CSV, Flower-17 tgz, archives)."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def gtsrb_split(rng: np.random.Generator, counts: dict[int, int]) -> dict[str, np.ndarray]:
    """A dict like the Udacity pickles: features uint8 (N, 32, 32, 3), labels, sizes, coords."""
    labels = np.concatenate([np.full(n, c, np.uint8) for c, n in counts.items()])
    features = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    sizes = np.tile(np.array([[40, 42]], np.uint8), (len(labels), 1))
    coords = np.tile(np.array([[5, 5, 35, 37]], np.uint8), (len(labels), 1))
    return {"features": features, "labels": labels, "sizes": sizes, "coords": coords}


def write_gtsrb_pickles(folder: Path, seed: int = 0, protocol: int = pickle.DEFAULT_PROTOCOL) -> dict[str, dict]:
    """train.p (3 classes: 3, 2, 4 images), valid.p (2), test.p (3) in ``folder``."""
    rng = np.random.default_rng(seed)
    splits = {
        "train.p": gtsrb_split(rng, {0: 3, 1: 2, 2: 4}),
        "valid.p": gtsrb_split(rng, {1: 1, 2: 1}),
        "test.p": gtsrb_split(rng, {0: 1, 1: 1, 2: 1}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in splits.items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=protocol))
    return splits


def _ppm(path: Path, rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="PPM")
    return arr


def write_gtsrb_official(folder: Path, seed: int = 0) -> dict[str, list[int]]:
    """Final_Training/Images/<class>/*.ppm + GT-<class>.csv and Final_Test/Images + GT-final_test.csv."""
    rng = np.random.default_rng(seed)
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
    train_labels = []
    for c, n in ((0, 2), (5, 3)):
        d = folder / "GTSRB" / "Final_Training" / "Images" / f"{c:05d}"
        d.mkdir(parents=True)
        rows = []
        for i in range(n):
            w, h = 30 + i, 33
            _ppm(d / f"00000_{i:05d}.ppm", rng, w, h)
            rows.append(f"00000_{i:05d}.ppm;{w};{h};5;5;{w - 6};{h - 6};{c}\n")
            train_labels.append(c)
        (d / f"GT-{c:05d}.csv").write_text(header + "".join(rows))
    d = folder / "GTSRB" / "Final_Test" / "Images"
    d.mkdir(parents=True)
    rows, test_labels = [], []
    for i, c in enumerate((5, 0, 42)):
        _ppm(d / f"{i:05d}.ppm", rng, 35, 31)
        rows.append(f"{i:05d}.ppm;35;31;5;5;29;25;{c}\n")
        test_labels.append(c)
    (folder / "GT-final_test.csv").write_text(header + "".join(rows))
    return {"train": train_labels, "test": test_labels}


def flower_color(folder: int, k: int) -> tuple[int, int, int]:
    """The solid colour of image k (0..79) of class folder ``folder``: decodable after JPEG + resize."""
    return (folder * 15, (k % 10) * 25, (k // 10) * 25)


def decode_flower(pixel: np.ndarray) -> tuple[int, int]:
    """(folder, k) from a pixel written by :func:`flower_color`."""
    r, g, b = (int(v) for v in pixel)
    return round(r / 15), round(b / 25) * 10 + round(g / 25)


def write_flower_tgz(path: Path, num_classes: int = 17) -> Path:
    """17flowers.tgz layout: jpg/image_0001.jpg … (80 consecutive per class) and jpg/files.txt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        names = []
        for i in range(num_classes * 80):
            folder, k = divmod(i, 80)
            buf = io.BytesIO()
            Image.new("RGB", (8, 6), flower_color(folder, k)).save(buf, format="JPEG", quality=100)
            name = f"image_{i + 1:04d}.jpg"
            names.append(name)
            _add_bytes(tf, f"jpg/{name}", buf.getvalue())
        _add_bytes(tf, "jpg/files.txt", ("\n".join(names) + "\n").encode())
    return path


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def malicious_tar(path: Path, kind: str) -> Path:
    """A tar with one unsafe member: 'absolute', 'dotdot', 'symlink' (to ../..), 'hardlink' (to /etc/passwd)."""
    with tarfile.open(path, "w") as tf:
        _add_bytes(tf, "jpg/ok.txt", b"fine")
        if kind == "absolute":
            _add_bytes(tf, os.path.abspath(str(path.parent / "evil_abs.txt")), b"evil")
        elif kind == "dotdot":
            _add_bytes(tf, "jpg/../../evil_dotdot.txt", b"evil")
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("jpg/link")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "../../outside" if kind == "symlink" else "/etc/passwd"
            tf.addfile(info)
        else:
            raise ValueError(kind)
    return path


def malicious_zip(path: Path, member: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(zipfile.ZipInfo(member), "evil")
    return path


class Evil:
    """Unpickling this would run ``os.system`` (touching a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))

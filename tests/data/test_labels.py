"""Cached labels are checked against the dataset's class count and dtype wherever the cache is
checked: ``data info`` and every load refuse them (one line naming the file, exit 2, nothing
written), ``data fetch`` prepares the dataset again. Each case damages a hard-linked copy of the
session's MNIST cache and records the damaged file's digest in the manifest, as a hand edit would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from robustattr import cli
from test_bad_input_files import _cache_copy, _listing, _replace, base_config, pristine_run  # noqa: F401


def _damage_labels(root: Path, labels: object, *, pickled: bool = False) -> Path:
    """Replace the cached test labels (a new file, never through the shared hard link) and record the
    new file's digest in the manifest, as a hand edit that "fixes" the digest would."""
    folder = root / "mnist"
    path = folder / "test-labels.npy"
    path.unlink()
    with open(path, "wb") as fh:
        np.save(fh, labels, allow_pickle=pickled)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["test-labels.npy"] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                            "bytes": path.stat().st_size}
    _replace(folder / "manifest.json", json.dumps(manifest).encode())
    return path


LABELS = [  # (id, the damaged labels from the good ones, pickled, words of the error)
    ("all 99", lambda y: np.full_like(y, 99), False, "cached label 99 is outside 0..9 (the dataset's 10 classes)"),
    ("a negative one", lambda y: np.concatenate([[-1], y[1:]]), False, "cached label -1 is outside 0..9"),
    ("floats", lambda y: y.astype(np.float64), False, "cached labels are float64 (10000,), not int64 (N,)"),
    ("pickled objects", lambda y: y.astype(object), True, "cached labels cannot be read"),
    ("one short", lambda y: y[:-1], False, "9999 cached labels for 10000 images"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "pickled", "needle"), [c[1:] for c in LABELS], ids=[c[0] for c in LABELS])
def test_bad_cached_labels_are_refused_where_the_cache_is_checked(mnist_root, pristine_run, tmp_path, capsys,
                                                                 damage, pickled, needle) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    path = _damage_labels(root, damage(np.load(root / "mnist" / "test-labels.npy")), pickled=pickled)
    run = Path(shutil.copytree(pristine_run, tmp_path / "run", copy_function=os.link))
    before = _listing(run)
    for argv in (["data", "info", "mnist", "--root", str(root)],
                 ["eval", "pgd", str(run), "--set", f"data_root={root}"],
                 ["eval", "attribution", str(run), "--set", f"data_root={root}"]):
        code = cli.main(argv)
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2 and "Traceback" not in err, (argv, err)
        assert last.startswith(f"robustattr: error: {path}: ") and needle in last, (argv, last)
    assert _listing(run) == before


REPAIRS = [c for c in LABELS if c[0] in ("all 99", "floats", "pickled objects")]


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "pickled"), [c[1:3] for c in REPAIRS], ids=[c[0] for c in REPAIRS])
def test_data_fetch_repairs_bad_cached_labels(mnist_root, tmp_path, capsys, damage, pickled) -> None:
    root = _cache_copy(mnist_root, tmp_path)
    good = np.load(root / "mnist" / "test-labels.npy")
    _damage_labels(root, damage(good), pickled=pickled)
    assert cli.main(["data", "fetch", "mnist", "--root", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "prepared"
    assert np.array_equal(np.load(root / "mnist" / "test-labels.npy"), good)
    assert cli.main(["data", "info", "mnist", "--root", str(root)]) == 0

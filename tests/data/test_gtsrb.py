"""GTSRB parsers and preparation on small files in the real formats (Udacity pickles, official PPM/CSV)."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from robustattr import data
from robustattr.data import gtsrb
from robustattr.data.equalize import equalize_hist
from robustattr.errors import UserInputError
from raw_formats import Evil, write_gtsrb_official, write_gtsrb_pickles


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("ROBUSTATTR_OFFLINE", "1")  # never download the real bundle in tests


def _nchw(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("protocol", [2, 5])
def test_pickle_bundle_prepared_like_the_original(tmp_path, protocol):
    raw = write_gtsrb_pickles(tmp_path / "src", protocol=protocol)
    out = data.fetch("gtsrb", root=tmp_path / "cache", source_dir=tmp_path / "src", train_per_class=5)
    assert out["splits"] == {"train": 15, "validation": 2, "test": 3}
    assert out["params"] == {"seed": gtsrb.DEFAULT_SEED, "train_per_class": 5}
    assert out["cache_dir"].endswith(f"gtsrb-seed{gtsrb.DEFAULT_SEED}-per5")
    assert out["source_digests"] == "recorded on first use" and set(out["source_files"]) == {"train.p", "valid.p", "test.p"}

    train = data.load("gtsrb", "train", root=tmp_path / "cache", train_per_class=5)
    assert train.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert train.images.shape == (15, 3, 32, 32) and train.value_range == (0.0, 255.0)
    feats = _nchw(raw["train.p"]["features"])
    # originals first in each class, histogram-equalised
    assert np.array_equal(train.images[:3].numpy(), equalize_hist(feats[:3]))
    assert np.array_equal(train.images[5:7].numpy(), equalize_hist(feats[3:5]))
    test = data.load("gtsrb", "test", root=tmp_path / "cache", train_per_class=5)
    assert np.array_equal(test.images.numpy(), equalize_hist(_nchw(raw["test.p"]["features"])))
    assert test.labels.tolist() == [0, 1, 2]
    x, y = test.batch(torch.arange(3))
    assert x.dtype == torch.float32 and torch.equal(x, test.images.float()) and x.max() == 255.0
    assert len(data.load("gtsrb", "validation", root=tmp_path / "cache", train_per_class=5)) == 2


def test_augmentation_is_seeded(tmp_path):
    write_gtsrb_pickles(tmp_path / "src")
    a = data.fetch("gtsrb", root=tmp_path / "a", source_dir=tmp_path / "src", train_per_class=6, seed=1)
    b = data.fetch("gtsrb", root=tmp_path / "b", source_dir=tmp_path / "src", train_per_class=6, seed=1)
    c = data.fetch("gtsrb", root=tmp_path / "a", source_dir=tmp_path / "src", train_per_class=6, seed=2)
    assert a["files"]["train-images.npy"] == b["files"]["train-images.npy"]
    assert a["files"]["train-images.npy"] != c["files"]["train-images.npy"]
    assert a["files"]["test-images.npy"] == c["files"]["test-images.npy"]


def test_zip_bundle_and_trust_on_first_use(tmp_path):
    write_gtsrb_pickles(tmp_path / "p")
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "traffic-signs-data.zip", "w") as zf:
        for name in ("train.p", "valid.p", "test.p"):
            zf.write(tmp_path / "p" / name, name)
    root = tmp_path / "cache"
    out = data.fetch("gtsrb", root=root, source_dir=src, train_per_class=4)
    assert set(out["source_files"]) == {"traffic-signs-data.zip", "train.p", "valid.p", "test.p"}
    trusted = json.loads((root / "trusted-sha256.json").read_text())
    assert trusted["gtsrb/traffic-signs-data.zip"]["sha256"] == out["source_files"]["traffic-signs-data.zip"]

    write_gtsrb_pickles(tmp_path / "p2", seed=7)  # a different bundle under the same name
    with zipfile.ZipFile(src / "traffic-signs-data.zip", "w") as zf:
        zf.write(tmp_path / "p2" / "train.p", "train.p")
    with pytest.raises(UserInputError, match=r"traffic-signs-data\.zip: sha256 [0-9a-f]{64} differs from "
                                             r"[0-9a-f]{64} recorded on first use"):
        data.fetch("gtsrb", root=root, source_dir=src, train_per_class=4, force=True)


def test_official_ppm_csv_format(tmp_path):
    labels = write_gtsrb_official(tmp_path / "src")
    raw = gtsrb.read_official(tmp_path / "src")
    assert raw.splits["train"][0].shape == (5, 32, 32, 3) and raw.splits["train"][1].tolist() == labels["train"]
    assert raw.splits["test"][1].tolist() == labels["test"] and "validation" not in raw.splits
    cropped = gtsrb.read_official(tmp_path / "src", crop_roi=True)
    assert not np.array_equal(cropped.splits["test"][0], raw.splits["test"][0])

    root = tmp_path / "cache"
    out = data.fetch("gtsrb", root=root, source_dir=tmp_path / "src", train_per_class=3)
    assert out["splits"] == {"train": 6, "test": 3}  # classes 0 and 5 present, 3 each
    assert out["source_digests"] == "none (loose image files)"
    with pytest.raises(UserInputError, match="has no split 'validation'; choose from train, test"):
        data.load("gtsrb", "validation", root=root, train_per_class=3)


def test_official_csv_errors_name_the_line(tmp_path):
    write_gtsrb_official(tmp_path / "src")
    csv = tmp_path / "src" / "GT-final_test.csv"
    csv.write_text(csv.read_text().replace(";42\n", ";43\n"))
    with pytest.raises(UserInputError, match=r"GT-final_test\.csv: line 4: ClassId 43 not in \[0, 43\)"):
        gtsrb.read_official(tmp_path / "src")


def test_bad_pickle_contents_are_refused(tmp_path):
    write_gtsrb_pickles(tmp_path / "src")
    (tmp_path / "src" / "test.p").write_bytes(pickle.dumps({"features": np.zeros((2, 32, 32), np.uint8), "labels": [1, 2]}))
    with pytest.raises(UserInputError, match=r"test\.p: 'features' must be uint8 \(N, 32, 32, 3\)"):
        gtsrb.read_pickle_bundle(tmp_path / "src")


def test_malicious_pickle_never_runs(tmp_path):
    write_gtsrb_pickles(tmp_path / "src")
    marker = tmp_path / "pwned"
    (tmp_path / "src" / "train.p").write_bytes(pickle.dumps({"features": Evil(marker), "labels": [0]}))
    with pytest.raises(UserInputError, match=r"train\.p: refused to unpickle: global (posix|os|nt)\.system"):
        data.fetch("gtsrb", root=tmp_path / "cache", source_dir=tmp_path / "src", train_per_class=3)
    assert not marker.exists()
    assert not (tmp_path / "cache" / "trusted-sha256.json").exists()  # nothing recorded for a refused file


def test_no_source_message_lists_every_source_and_the_fix(tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    with pytest.raises(UserInputError) as exc:
        data.fetch("gtsrb", root=tmp_path / "cache", source_dir=src)
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"(1) source_dir {src}: no train.p/valid.p/test.p" in msg
    assert f"(2) cache folder {tmp_path / 'cache' / 'sources' / 'gtsrb'}: no folder" in msg
    assert f"(3) URL {gtsrb.URL}: skipped: $ROBUSTATTR_OFFLINE is set" in msg
    assert "Put train.p, valid.p and test.p" in msg and "data_path" in msg
    info = data.describe("gtsrb", root=tmp_path / "cache")
    assert info[0]["cached"] is False and "train.p" in info[0]["how_to_fetch"]

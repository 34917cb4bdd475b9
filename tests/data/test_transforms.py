"""Histogram equalisation (OpenCV semantics), the IDX reader and the augmentation chain."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from robustattr.data import augment
from robustattr.data.equalize import equalize_hist
from robustattr.data.idx import parse_idx, read_idx_bytes, to_idx_bytes
from robustattr.errors import UserInputError


def test_equalize_hand_computed():
    # hist: 50 x2, 100 x3, 200 x1; total 6; min count 2; scale 255/4 = 63.75
    img = np.array([50, 50, 100, 100, 100, 200], np.uint8).reshape(1, 1, 2, 3)
    assert equalize_hist(img).ravel().tolist() == [0, 0, 191, 191, 191, 255]  # 3·63.75 = 191.25 -> 191
    # scale 255/2 = 127.5: 1·127.5 rounds half to even -> 128
    assert equalize_hist(np.array([10, 20, 30], np.uint8).reshape(1, 1, 1, 3)).ravel().tolist() == [0, 128, 255]


def test_equalize_per_channel_and_constant_channels():
    img = np.stack([np.array([[7, 7], [7, 7]]), np.array([[0, 1], [2, 3]])]).astype(np.uint8)[None]  # (1, 2, 2, 2)
    out = equalize_hist(np.concatenate([img, img[:, ::-1]]))
    assert out[0, 0].tolist() == [[7, 7], [7, 7]]  # single value: unchanged, as OpenCV
    assert out[0, 1].ravel().tolist() == [0, 85, 170, 255]  # k·255/3
    assert np.array_equal(out[1], out[0][::-1])
    with pytest.raises(ValueError, match="uint8"):
        equalize_hist(img.astype(np.float32))


def test_idx_reader_checks_everything(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = to_idx_bytes(arr)
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert np.array_equal(parse_idx(raw, source="f", ndim=3), arr)
    (tmp_path / "f.gz").write_bytes(gzip.compress(raw))
    assert read_idx_bytes(tmp_path / "f.gz") == raw
    with pytest.raises(UserInputError, match=r"^bad: not an IDX file \(bad magic number 01000803\)"):
        parse_idx(b"\x01" + raw[1:], source="bad", ndim=3)
    with pytest.raises(UserInputError, match=r"IDX header says shape \(2, 3, 4\) \(40 bytes\) but the file has 39"):
        parse_idx(raw[:-1], source="f", ndim=3)
    with pytest.raises(UserInputError, match="has 3 dimensions, expected 1"):
        parse_idx(raw, source="f", ndim=1)
    with pytest.raises(UserInputError, match="IDX elements are uint8, expected float32"):
        parse_idx(raw, source="f", dtype=np.float32, ndim=3)
    (tmp_path / "t.gz").write_bytes(gzip.compress(raw)[:-9])
    with pytest.raises(UserInputError, match=r"t\.gz: corrupt gzip file"):
        read_idx_bytes(tmp_path / "t.gz")
    f32 = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(parse_idx(to_idx_bytes(f32), source="f", dtype=np.float32, ndim=2), f32)


def _params(n, angle=0.0, shift=(0.0, 0.0)):
    return {"angle": np.full(n, angle), "shift": np.tile(np.array([shift], float), (n, 1)), "jitter": np.zeros((n, 8))}


def test_augment_identity_shift_and_rotation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    assert np.abs(augment.augment(x, _params(2)).astype(int) - x).max() <= 1  # ×255 truncation may lose 1
    shifted = augment.augment(x, _params(2, shift=(1.0, 0.0))).astype(int)
    assert np.abs(shifted[..., 1:] - x[..., :-1]).max() <= 1 and shifted[..., 0].max() == 0  # black border
    rot = augment.augment(x, _params(2, angle=90.0)).astype(int)
    # source = R(θ)(p - c) + c, p = (col, row): out[r, c] = in[c, 7 - r], i.e. counter-clockwise like skimage
    assert np.abs(rot - np.rot90(x, k=1, axes=(2, 3))).max() <= 1

def test_draw_params_ranges():
    p = augment.draw_params(np.random.RandomState(0), 5000, 32)
    assert np.abs(p["angle"]).max() <= 15 and np.abs(p["shift"]).max() <= 2.5
    assert np.abs(p["jitter"]).max() <= 32 * 0.3 * 0.8
    assert np.abs(p["jitter"]).max() > 7  # the full range is used


def test_balance_keeps_originals_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 3, 16, 16), dtype=np.uint8)
    y = np.array([2, 0, 2, 2, 0])
    out, labels = augment.balance(x, y, 4, np.random.RandomState(3))
    assert labels.tolist() == [0] * 4 + [2] * 4
    assert np.array_equal(out[:2], x[[1, 4]]) and np.array_equal(out[4:7], x[[0, 2, 3]])
    out2, _ = augment.balance(x, y, 4, np.random.RandomState(3))
    assert np.array_equal(out, out2)
    big, big_labels = augment.balance(x, y, 2, np.random.RandomState(3))  # more originals than asked: all kept
    assert big_labels.tolist() == [0, 0, 2, 2, 2]

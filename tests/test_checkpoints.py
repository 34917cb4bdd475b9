"""Checkpoints: plain data round trips, atomic and pruned, corrupt files are user errors, no unpickling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from robustattr import models
from robustattr.checkpoints import (
    capture_rng_state, latest_checkpoint, list_checkpoints, load_checkpoint, load_optimizer_state,
    load_run_model, restore_rng_state, save_checkpoint,
)
from robustattr.config import load_config
from robustattr.errors import UserInputError


def _trained(optimizer_cls=torch.optim.Adam, **kw) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optimizer_cls(model.parameters(), lr=0.1, **kw)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_round_trip_of_weights_optimizer_and_meta(tmp_path, optimizer) -> None:
    cls, kw = (torch.optim.Adam, {}) if optimizer == "adam" else (torch.optim.SGD, {"momentum": 0.9})
    model, opt = _trained(cls, **kw)
    path = save_checkpoint(tmp_path, 2, model, opt, state={"data_order": {"pos": 7}, "config_digest": "abc"})
    assert path == tmp_path / "checkpoint-00000002.safetensors" and path.with_suffix(".json").is_file()
    state_dict, meta = load_checkpoint(path)
    assert meta["step"] == 2 and meta["data_order"] == {"pos": 7} and meta["config_digest"] == "abc"
    assert meta["robustattr_version"] and meta["optimizer"]["class"] == type(opt).__name__
    for key, value in model.state_dict().items():
        assert torch.equal(state_dict[key], value)

    fresh_model, fresh_opt = _trained(cls, **kw)
    fresh_opt.load_state_dict(load_optimizer_state(path))
    expected, got = opt.state_dict(), fresh_opt.state_dict()
    assert got["param_groups"] == json.loads(json.dumps(expected["param_groups"]))
    for idx, slots in expected["state"].items():
        for key, value in slots.items():
            assert torch.equal(torch.as_tensor(got["state"][idx][key]), torch.as_tensor(value)), key


def test_files_are_plain_data_and_loading_never_unpickles(tmp_path, monkeypatch) -> None:
    model, opt = _trained()
    path = save_checkpoint(tmp_path, 1, model, opt)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert json.loads(path.read_bytes()[8 : 8 + header_len])  # a safetensors JSON header
    json.loads(path.with_suffix(".json").read_text())
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".safetensors"]

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", refuse)
    load_checkpoint(path)
    load_optimizer_state(path)


def test_keeps_the_newest_and_latest_ignores_weights_without_sidecar(tmp_path) -> None:
    model, _ = _trained()
    assert latest_checkpoint(tmp_path) is None and latest_checkpoint(tmp_path / "missing") is None
    for step in (3, 6, 9, 12, 15):
        save_checkpoint(tmp_path, step, model, keep=3)
    assert list_checkpoints(tmp_path) == [9, 12, 15]
    assert len(list(tmp_path.iterdir())) == 6
    (tmp_path / "checkpoint-00000018.safetensors").write_bytes(b"half-written")  # no sidecar: not trusted
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-00000015.safetensors"
    assert load_checkpoint(tmp_path)[1]["step"] == 15  # a run dir means its latest checkpoint


def test_truncated_or_corrupt_files_are_user_errors_naming_the_path(tmp_path) -> None:
    model, _ = _trained()
    path = save_checkpoint(tmp_path, 1, model)
    blob = path.read_bytes()
    path.write_bytes(blob[:-10])
    with pytest.raises(UserInputError, match=rf"checkpoint {path} is truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(UserInputError, match="truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(blob)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(UserInputError, match=r"sidecar .*checkpoint-00000001.json is corrupt"):
        load_checkpoint(path)
    with pytest.raises(UserInputError, match="incomplete or missing"):
        load_checkpoint(tmp_path / "checkpoint-00000099.safetensors")


def test_rng_state_round_trip() -> None:
    state = json.loads(json.dumps(capture_rng_state()))
    expected = torch.rand(3), np.random.rand(3)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_load_run_model(tmp_path) -> None:
    cfg = load_config(None, ["dataset=mnist", f"model_dir={tmp_path}", "device=cpu"])
    with pytest.raises(UserInputError, match=rf"no checkpoint in {tmp_path}; train first: robustattr train CONFIG"):
        load_run_model(cfg)
    torch.manual_seed(1)
    model = models.create("mnist_cnn")
    save_checkpoint(tmp_path, 5, model, state={"model": "mnist_cnn"})
    loaded, meta = load_run_model(cfg)
    assert meta["step"] == 5 and not loaded.training
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    save_checkpoint(tmp_path, 6, nn.Linear(2, 2))
    with pytest.raises(UserInputError, match="does not fit model 'mnist_cnn'"):
        load_run_model(cfg)


def test_the_same_weights_make_the_same_file_bytes(tmp_path) -> None:
    """checkpoint_sha256 in the result files names the weights: equal weights, equal files (safetensors
    writes a metadata map in hash order, so the checkpoint keeps one entry)."""
    import torch

    from robustattr import models
    from robustattr.checkpoints import save_checkpoint

    torch.manual_seed(0)
    model = models.create("mnist_cnn")
    digests = set()
    for i in range(10):  # with two metadata entries, ten files in one order: a 1-in-500 chance
        path = save_checkpoint(tmp_path / f"run{i}", 5, model, None, state={})
        digests.add(path.read_bytes())
    assert len(digests) == 1

"""Registry-driven: every catalog entry has a module with the data protocol, resolves a config with
its own defaults, and is a choice of the CLI; the built-ins keep the original's values (spec §6)."""

from __future__ import annotations

import importlib

import pytest

from robustattr.cli import DATASET_NAMES
from robustattr.config import load_config
from robustattr.data.catalog import DATASETS, MNIST_DEFAULTS


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_has_the_protocol_and_resolves_a_config(name: str) -> None:
    info = DATASETS[name]
    module = importlib.import_module(info.module)
    for attr in ("sources", "prepare", "PREPARE_DEFAULTS", "HOW_TO"):
        assert hasattr(module, attr), f"{info.module} lacks {attr}"
    cfg = load_config(None, base={"dataset": name})
    for key, value in info.defaults.items():
        if value is not None:
            assert cfg.to_dict()[key] == value, key
    assert cfg.model == info.default_model and cfg.num_eval_examples == info.split_sizes["test"]
    assert set(info.defaults) == set(MNIST_DEFAULTS) and name in DATASET_NAMES


def test_the_built_ins_keep_the_originals_defaults() -> None:
    got = {n: load_config(None, base={"dataset": n}) for n in ("mnist", "fashion-mnist", "gtsrb", "flower17")}
    assert [got[n].epsilon for n in got] == [0.3, 0.1, 8.0, 8.0]
    assert [got[n].num_steps for n in got] == [40, 20, 7, 7]
    assert [got[n].k_top for n in got] == [200, 100, 100, 1000]
    assert [got[n].training_batch_size for n in got] == [50, 50, 64, 16]
    assert [got[n].attribution_attack_steps for n in got] == [100, 100, 50, 100]
    assert [got[n].np_random_seed for n in got] == [4557077, 4557077, 216105420, 216105420]
    assert got["mnist"].max_num_training_steps == 25000 and got["gtsrb"].max_num_training_steps == 70001
    assert [DATASETS[n].integer_pixels for n in got] == [False, False, True, True]

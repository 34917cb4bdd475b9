"""Registry-driven: every registered objective (the paper's and later ones) trains at a tiny size on
real MNIST, and the lists others derive from the registry agree with it (timm's test_models style)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from robustattr.config import load_config
from robustattr.errors import UserInputError
from robustattr.reports.paper import METHOD_NAMES
from robustattr.training.objectives import REGISTRY, objective_info, resume_keys


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_objective_trains_a_few_steps_on_mnist(name: str, tmp_path: Path, mnist_root: Path) -> None:
    from robustattr.training import train

    info = REGISTRY[name]
    cfg = load_config(None, base={
        "dataset": "mnist", "training_objective": name, "data_root": str(mnist_root), "model_dir": str(tmp_path),
        "device": "cpu", "max_num_training_steps": 2, "num_output_steps": 1, "training_batch_size": 4,
        "num_steps": 1, "m": 2, "approx_factor": 1, "num_checkpoint_steps": 2,
    })
    summary = train(cfg, progress=False)
    assert summary["steps"] == 2 and math.isfinite(summary["metrics"]["loss"])
    assert summary["training_objective"] == info.name


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_spelling_names_its_objective_and_its_metadata_is_used(name: str) -> None:
    info = REGISTRY[name]
    for spelling in (info.name, info.slug, info.display, info.display.lower(), info.slug.replace("-", "_"),
                     *info.aliases, *([info.loss_class] if info.loss_class else [])):
        assert objective_info(spelling) is info, spelling
        assert load_config(None, base={"dataset": "mnist", "training_objective": spelling}).training_objective == name
    assert METHOD_NAMES[name] == info.display
    assert set(info.keys) <= set(resume_keys(name))  # its own keys define the weights of its runs
    if info.loss_class:
        import robustattr.losses as losses

        assert callable(getattr(losses, info.loss_class))


def test_objective_keys_belong_to_their_objective_only() -> None:
    owners = {key: n for n, i in REGISTRY.items() for key in i.keys}
    if not owners:
        pytest.skip("no objective with keys of its own is registered")
    key, owner = next(iter(owners.items()))
    other = next(n for n in REGISTRY if key not in REGISTRY[n].keys)
    value = REGISTRY[owner].keys[key].default
    with pytest.raises(UserInputError, match=f"'{key}'.*belongs to training_objective"):
        load_config(None, base={"dataset": "mnist", "training_objective": other, key: value})
    cfg = load_config(None, base={"dataset": "mnist", "training_objective": owner, key: value})
    assert getattr(cfg, key) == value and cfg.to_dict()[key] == value
    assert key not in load_config(None, base={"dataset": "mnist", "training_objective": other}).to_dict()


def test_registry_order_puts_the_papers_four_first() -> None:
    assert list(REGISTRY)[:4] == ["nat", "adv", "ar", "adv_ar"]
    assert [REGISTRY[n].uses_inner_attack for n in ("nat", "adv", "ar", "adv_ar")] == [False, True, True, True]

"""AttackSettings (one value for every attack setting), the one ε rule and the one random start."""

from __future__ import annotations

import math

import pytest
import torch

from robustattr.attacks import AttackSettings, attribution_attack, pgd, strong_attribution_attack
from robustattr.attacks.threat_model import check_epsilon, random_start, uniform_noise
from robustattr.config import load_config
from robustattr.errors import UserInputError

from .test_attribution_attack import _batch

KW = dict(epsilon=0.1, step_size=0.04, steps=3, k_top=10, eval_k_top=8, n_steps=4)


def test_keywords_and_a_settings_value_run_the_same_attack():
    model, x, y = _batch()
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(len(x))]  # noqa: E731
    a = attribution_attack(model, x, y, method="random", generator=gens(), **KW)
    b = attribution_attack(model, x, y, AttackSettings(method="random", **KW), generator=gens())
    c = attribution_attack(model, x, y, AttackSettings(**KW), method="random", generator=gens())  # override
    for r in (b, c):
        assert torch.equal(r.x_adv, a.x_adv) and torch.equal(r.kendall.nan_to_num(), a.kendall.nan_to_num())


def test_example_ids_seed_the_per_example_generators():
    from robustattr.attacks._common import example_generator

    model, x, y = _batch()
    settings = AttackSettings(method="random", seed=9, **KW)
    a = attribution_attack(model, x, y, settings, example_ids=range(10, 15))
    b = attribution_attack(model, x, y, settings, generator=[example_generator(9, i) for i in range(10, 15)])
    assert torch.equal(a.x_adv, b.x_adv)


def test_method_strong_runs_the_portfolio():
    model, x, y = _batch()
    settings = AttackSettings(method="strong", seed=3, **KW)
    r = attribution_attack(model, x, y, settings)
    direct = strong_attribution_attack(model, x, y, settings)
    assert r.members == direct.members and torch.equal(r.kendall.nan_to_num(), direct.kendall.nan_to_num())


def test_unknown_and_renamed_keywords_are_named():
    with pytest.raises(TypeError, match="'ig_steps' .*now called 'n_steps'"):
        AttackSettings.of(ig_steps=4, **{k: v for k, v in KW.items() if k != "n_steps"})
    with pytest.raises(TypeError, match="'epsilom'.*did you mean 'epsilon'"):
        AttackSettings.of(epsilom=0.1)


@pytest.mark.parametrize("change,match", [
    ({"method": "topk"}, "attribution_attack_method='topk'"),
    ({"measure": "tau"}, "attribution_attack_measure"),
    ({"surrogate": "relu"}, "attribution_attack_surrogate"),
    ({"steps": -1}, "attribution_attack_steps=-1"),
    ({"n_steps": 0}, "num_IG_steps=0"),
    ({"random_starts": -1}, "strong_random_starts=-1"),
    ({"direction_n_steps": 0}, "strong_direction_ig_steps=0"),
    ({"budget": "quick"}, "attribution_attack_budget='quick'"),
    ({"epsilon": -0.1}, "epsilon"),
    ({"bounds": (1.0, 0.0)}, "bounds"),
])
def test_bad_settings_are_refused_when_made(change, match):
    with pytest.raises(UserInputError, match=match):
        AttackSettings(**{**KW, **change})


def test_from_config_maps_every_key():
    cfg = load_config(None, base={
        "dataset": "gtsrb", "attribution_attack_method": "strong", "attribution_attack_measure": "spearman",
        "epsilon": 8.0, "attribution_attack_step_size": 1.0, "attribution_attack_steps": 7,
        "attribution_attack_times": 2, "k_top": 50, "eval_k_top": 40, "num_IG_steps": 12, "random_seed": 5,
        "strong_random_starts": 3, "attribution_attack_flat_rule": "none", "attribution_attack_budget": "thorough"})
    s = AttackSettings.from_config(cfg)
    assert (s.method, s.measure, s.epsilon, s.step_size, s.steps, s.times) == ("strong", "spearman", 8.0, 1.0, 7, 2)
    assert (s.k_top, s.eval_k, s.n_steps, s.seed, s.random_starts) == (50, 40, 12, 5, 3)
    assert s.bounds == (0.0, 255.0) and s.integer_pixels and s.flat_rule == "none"
    assert s.direction_n_steps is None and s.direction_points == 12  # all IG points by default
    assert s.budget == "thorough" and s.starts == 3 and s.strong_steps == 7  # starts: the key wins
    assert s.share == 1.8  # thorough: 1.8 walks' worth of other members' moves per iteration
    assert AttackSettings.from_config(load_config(None, base={"dataset": "mnist"})).starts == 2  # standard
    assert s.saliency.kind == "ig" and s.saliency.n_steps == 12
    mnist = AttackSettings.from_config(load_config(None, base={"dataset": "mnist"}))
    assert mnist.bounds == (0.0, 1.0) and not mnist.integer_pixels and mnist.target_box is None


def test_one_epsilon_rule_for_every_attack():
    assert check_epsilon(0) == 0.0 and check_epsilon(0.3) == 0.3
    for bad in (-0.1, math.nan, math.inf, "wide"):
        with pytest.raises(UserInputError, match="epsilon"):
            check_epsilon(bad)
    model, x, y = _batch()
    for attack in (lambda eps: pgd(model, x, y, eps, 1, 0.01),
                   lambda eps: attribution_attack(model, x, y, **{**KW, "epsilon": eps}),
                   lambda eps: strong_attribution_attack(model, x, y, **{**KW, "epsilon": eps})):
        with pytest.raises(UserInputError, match="epsilon"):
            attack(-0.1)
    # ε = 0 is allowed in the Python API: the attack must then return the clean image.
    r = attribution_attack(model, x, y, **{**KW, "epsilon": 0.0})
    assert torch.equal(r.x_adv, x)


def test_one_random_start_whole_batch_or_per_row():
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    one = random_start(x, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(one, x + uniform_noise(x.shape, 0.2, torch.Generator().manual_seed(1), dtype=x.dtype))
    rows = random_start(x, 0.2, [torch.Generator().manual_seed(s) for s in (4, 5, 6)])
    alone = random_start(x[1:2], 0.2, [torch.Generator().manual_seed(5)])
    assert torch.equal(rows[1:2], alone)  # a row's start does not depend on its batch
    assert (rows - x).abs().max() <= 0.2

"""The strong attribution evaluation: a per-example, per-metric worst case over a portfolio of walks."""

from __future__ import annotations

import pytest
import torch

from robustattr.attacks import attribution_attack
from robustattr.attacks._common import example_generator
from robustattr.attacks.strong_attribution import METRICS, portfolio, strong_attribution_attack
from robustattr.errors import UserInputError

from .test_attribution_attack import Tiny

SETTINGS = dict(epsilon=0.2, step_size=0.05, steps=4, k_top=10, eval_k_top=8, n_steps=4)


def _batch(seed: int = 0, n: int = 6):
    """Dense images, and two sparse ones whose topK objective is flat at the clean point."""
    torch.manual_seed(seed)
    model = Tiny().double()
    x = torch.rand(n, 2, 8, 8, dtype=torch.float64)
    x[-2:] = 0
    x[-2:, :, 3, 2:5] = 0.9
    with torch.no_grad():
        y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 3  # misclassified: not attacked
    return model, x, y


@pytest.fixture(scope="module")
def strong():
    model, x, y = _batch()
    return model, x, y, strong_attribution_attack(model, x, y, seed=11, **SETTINGS)


def test_worst_case_is_the_minimum_over_members_and_never_above_any(strong):
    _, _, _, r = strong
    att = r.attacked
    assert not att[0] and att[1:].all()
    assert r.members == tuple(m.name for m in portfolio(2, 1))
    for m in METRICS:
        values = r.member_values[m]
        assert values.shape == (len(r.members), 6)
        assert (r.__dict__[m][att] <= values[:, att]).all()
        torch.testing.assert_close(r.__dict__[m][att], values[:, att].min(0).values, rtol=0, atol=0)
        idx = r.worst_member[m][att]
        below = r.__dict__[m][att] < 1
        assert (idx[below] >= 0).all() and (idx[~below] == -1).all()
        picked = values[:, att].gather(0, idx.clamp_min(0)[None])[0]
        assert torch.equal(picked[below], r.__dict__[m][att][below])
        assert torch.isnan(r.__dict__[m][0]) and (r.worst_member[m][0] == -1)
    assert r.found[att].all(), "every attacked image must be moved, the flat ones included"


def test_never_above_the_faithful_attack_per_example(strong):
    model, x, y, r = strong
    gens = [example_generator(11, i) for i in range(len(x))]
    faithful = attribution_attack(model, x, y, method="topK", generator=gens, **SETTINGS)
    att = r.attacked
    for m in METRICS:
        ours, theirs = r.__dict__[m][att], faithful.__dict__[m][att]
        assert (ours <= theirs).all(), m
        # The portfolio's topK member is the faithful walk: its own minimum is below its reported value.
        assert (r.member_values[m][0, att] <= theirs).all(), m


def test_kept_labels_budget_and_the_drawn_perturbation(strong):
    model, x, y, r = strong
    with torch.no_grad():
        pred = model(r.x_adv).argmax(1)
    assert torch.equal(pred[r.attacked], y[r.attacked])
    assert (r.x_adv - x).abs().max() <= 0.2 + 1e-12 and r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    from robustattr.metrics import kendall_tau

    tau = kendall_tau(r.saliency, r.saliency_adv)
    torch.testing.assert_close(tau[r.attacked], r.kendall[r.attacked])  # x_adv is the lowest-τ iterate


def test_random_starts_reproducible_from_the_seed_and_independent_of_the_batch(strong):
    model, x, y, r = strong
    again = strong_attribution_attack(model, x, y, seed=11, **SETTINGS)
    for m in METRICS:
        assert torch.equal(again.member_values[m].nan_to_num(), r.member_values[m].nan_to_num())
    other = strong_attribution_attack(model, x, y, seed=12, **SETTINGS)
    starts = [i for i, name in enumerate(r.members) if "random_start" in name or name == "map_distance"]
    assert not torch.equal(other.member_values["kendall"][starts][:, 1:], r.member_values["kendall"][starts][:, 1:])
    # Example 3 alone (its id kept) gets exactly its result within the batch.
    alone = strong_attribution_attack(model, x[3:4], y[3:4], seed=11, example_ids=[3], **SETTINGS)
    for m in METRICS:
        assert torch.equal(alone.member_values[m][:, 0], r.member_values[m][:, 3])
    assert torch.equal(alone.x_adv[0], r.x_adv[3])


def test_bad_settings_are_user_errors():
    model, x, y = _batch()
    with pytest.raises(UserInputError, match="strong_random_starts"):
        strong_attribution_attack(model, x, y, random_starts=-1, **SETTINGS)
    with pytest.raises(UserInputError, match="strong_direction_ig_steps"):
        strong_attribution_attack(model, x, y, direction_n_steps=0, **SETTINGS)
    with pytest.raises(UserInputError, match="k_top"):
        strong_attribution_attack(model, x, y, **{**SETTINGS, "k_top": 100})

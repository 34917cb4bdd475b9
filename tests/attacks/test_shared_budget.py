"""The strong evaluation's shared step budget: the faithful walk moves at every iteration, the other
members at a staggered share of them with proportionally longer steps (``WalkMember.stride``)."""

from __future__ import annotations

import math

import pytest
import torch

from robustattr.attacks import AttackSettings, strong_attribution_attack
from robustattr.attacks import walk as walk_module
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.settings import BUDGETS
from robustattr.attacks.strong_attribution import portfolio
from robustattr.attacks.walk import WalkMember, WalkSaliency, WalkSettings, WalkState, walk

from .test_new_members import _model_and_batch

SETTINGS = dict(epsilon=0.2, step_size=0.05, steps=6, k_top=10, eval_k_top=8, n_steps=4)


@pytest.mark.parametrize("level", list(BUDGETS))
def test_portfolio_strides_give_the_levels_share_of_moves(level):
    share = BUDGETS[level].share
    walks = portfolio(BUDGETS[level].random_starts, None, share)
    first, others = walks[0], walks[1:]
    assert first.name == "topK" and first.stride == 1 and first.phase == 0  # the faithful walk, every iteration
    total = sum(w.kind.weight for w in others)
    assert [w.stride for w in others] == [math.ceil(total / (share * w.kind.weight) - 1e-9) for w in others]
    assert all(0 <= w.phase < w.stride for w in others)
    # Together the others move at most `share` times per iteration, on average over a long walk.
    horizon = math.lcm(*(w.stride for w in others))
    assert sum(horizon // w.stride for w in others) / horizon <= share + 1e-12
    # A heavier member moves at least as often as a lighter one.
    for a in others:
        for b in others:
            if a.kind.weight > b.kind.weight:
                assert a.stride <= b.stride, (a.name, b.name)
    assert all(w.stride == 1 for w in portfolio(2, None, None))  # no share: every walk every iteration


def test_weights_shift_the_moves_and_a_bad_weight_is_refused():
    import dataclasses

    from robustattr.attacks.members import Member, register_member

    even = {w.name: w.stride for w in portfolio(2, None, 1.0)}
    heavy = dataclasses.replace(MEMBERS["topK_lens"], weight=MEMBERS["topK_lens"].weight * 4)
    register_member(heavy, replace=True)
    try:
        shifted = {w.name: w.stride for w in portfolio(2, None, 1.0)}
    finally:
        register_member(dataclasses.replace(heavy, weight=heavy.weight / 4), replace=True)
    assert shifted["topK_lens"] < even["topK_lens"] and shifted["targeted_shift"] > even["targeted_shift"]
    with pytest.raises(ValueError, match="weight 0"):
        register_member(Member("weightless", None, stream=987654, weight=0))


def _direction_calls(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = walk_module.WalkSaliency.direction

    def counting(self, surrogate, x, y, state, member, n_steps):
        calls.append(x.shape[0])
        return original(self, surrogate, x, y, state, member, n_steps)

    monkeypatch.setattr(walk_module.WalkSaliency, "direction", counting)
    return calls


@pytest.mark.parametrize("level", list(BUDGETS))
def test_strong_costs_one_plus_share_walks_of_direction_passes(level, monkeypatch):
    model, x, y = _model_and_batch(2)
    s = AttackSettings(budget=level, seed=1, **dict(SETTINGS, steps=18))
    calls = _direction_calls(monkeypatch)
    r = strong_attribution_attack(model, x, y, s)
    walks = portfolio(s.starts, None, s.share)
    rows = sum(calls) / x.shape[0]  # walk-steps with a direction pass, per image
    with_objective = sum(w.kind.objective is not None for w in walks)
    assert rows == sum(sum(w.moves_at(t) for t in range(18)) for w in walks if w.kind.objective is not None)
    assert rows <= 18 * (1 + s.share) + with_objective  # ≈ (1 + share) faithful walks, not M of them
    assert rows < 18 * with_objective  # the old every-member-every-step schedule
    assert r.history["kendall"].shape == (18, 2)


def test_a_strided_member_moves_only_at_its_iterations_and_steps_stride_times_further():
    model, x, y = _model_and_batch(2)
    sal = WalkSaliency("ig", n_steps=4, chunk_size=None)
    s0 = sal(model, x, y)
    topk = MEMBERS["topK"]
    members = (WalkMember.of(topk), WalkMember.of(MEMBERS["random"], stride=3, phase=1))
    state = WalkState.build(model, sal, x, y, s0, members=members, k_top=10)
    settings = WalkSettings.checked(measure="kendall", epsilon=0.2, step_size=0.05, steps=7, k_top=10,
                                    eval_k_top=8, bounds=(0.0, 1.0), integer_pixels=False, flat_rule="random_sign")
    gens = [torch.Generator().manual_seed(i) for i in range(4)]
    r = walk(model, sal, x, y, s0, state, members, settings, gens)
    random_rows = slice(2, 4)
    tau = r.history["kendall"][:, random_rows]
    # It moves (and is scored) at iterations 1 and 4 only: its running minimum changes nowhere else.
    for t in range(1, 7):
        if t not in (1, 4):
            assert torch.equal(tau[t], tau[t - 1]), t
    assert (tau[1] < 1).all(), "its first move, of 3 × 0.05, must change the map"
    # The random walk's one scored iterate of its first move is x ± 0.15 (clipped to the box).
    one_move = walk(model, sal, x, y, s0, state, members, WalkSettings(**{**settings.__dict__, "steps": 2}),
                    [torch.Generator().manual_seed(i) for i in range(4)])
    delta = (one_move.x_worst[random_rows] - x).abs()
    assert delta.max() == pytest.approx(0.15) and ((delta - 0.15).abs() < 1e-12).float().mean() > 0.5


def test_a_bad_stride_is_refused():
    with pytest.raises(ValueError, match="stride 0"):
        WalkMember.of(MEMBERS["topK"], stride=0)
    with pytest.raises(ValueError, match="phase 3"):
        WalkMember.of(MEMBERS["topK"], stride=3, phase=3)

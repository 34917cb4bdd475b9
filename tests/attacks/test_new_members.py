"""The members of issue 22 (ig_cosine, targeted_shift, topK_lens, and rank_kendall), the budget levels and the strong
evaluation's running worst case and label-keeping flag.

Directions are checked against central finite differences of the member's whole objective on the
surrogate's IG map (float64): an objective evaluated on a map without a graph (the trap of the one
public IG-cosine replication) gives a zero direction and fails here.
"""

from __future__ import annotations

import pytest
import torch

from robustattr.attacks import AttackSettings, strong_attribution_attack
from robustattr.attacks.attribution_objectives import saliency, top_k_mask
from robustattr.attacks.members import MEMBERS, rank_kendall
from robustattr.attacks.members.rank_kendall import smooth_kendall_tau
from robustattr.attacks.members.targeted_shift import shifted_target
from robustattr.attacks.members.top_k_lens import dilated_top_k_mask
from robustattr.attacks.settings import BUDGETS
from robustattr.attacks.strong_attribution import METRICS
from robustattr.attacks.walk import WalkMember, WalkSaliency, WalkState
from robustattr.errors import UserInputError
from robustattr.metrics import kendall_tau

from .test_attribution_attack import Tiny

SETTINGS = dict(epsilon=0.2, step_size=0.05, steps=4, k_top=10, eval_k_top=8, n_steps=4)


def _model_and_batch(n: int = 3):
    torch.manual_seed(3)
    model = Tiny().double()
    x = torch.rand(n, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def _whole_objective(member, surrogate, x, y, rows, n_steps):
    s2 = saliency(surrogate, x, y, "ig", n_steps, create_graph=True)
    d = member.objective(s2, rows)
    if member.logits_term is not None:
        d = d + member.logits_term(surrogate(x), rows)
    return d


@pytest.mark.parametrize("name", ["ig_cosine", "targeted_shift", "topK_lens", "rank_kendall"])
def test_direction_is_the_sign_of_the_second_order_gradient(name):
    model, x, y = _model_and_batch()
    member = MEMBERS[name]
    sal = WalkSaliency("ig", n_steps=4, chunk_size=None)
    s0 = sal(model, x, y)
    state = WalkState.build(model, sal, x, y, s0, members=(WalkMember.of(member),), k_top=10)
    x_t = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)  # away from the clean point (cos = 1 there)
    surrogate = sal.surrogate_of(model)
    sign, flat = sal.direction(surrogate, x_t, y, state.rows(slice(None)), member, None)
    assert not flat.any() and (sign != 0).float().mean() > 0.5, "the map must carry a graph to x"
    gen = torch.Generator().manual_seed(0)
    coords = torch.randint(x_t[0].numel(), (40,), generator=gen)
    h = 1e-6
    agree = total = 0
    for i in range(x_t.shape[0]):
        rows = state.rows(slice(i, i + 1))
        for c in coords.tolist():
            e = torch.zeros_like(x_t[i : i + 1]).view(-1)
            e[c] = h
            e = e.view_as(x_t[i : i + 1])
            with torch.enable_grad():
                up = _whole_objective(member, surrogate, x_t[i : i + 1] + e, y[i : i + 1], rows, 4)
                down = _whole_objective(member, surrogate, x_t[i : i + 1] - e, y[i : i + 1], rows, 4)
            fd = float((up - down).detach() / (2 * h))
            if abs(fd) > 1e-5:
                total += 1
                agree += int(torch.sign(torch.tensor(fd)) == sign[i].view(-1)[c])
    assert total >= 20 and agree == total


def test_ig_cosine_on_a_detached_map_has_no_direction():
    """The trap: the same objective on a map computed without a graph gives a zero gradient."""
    model, x, y = _model_and_batch()
    sal = WalkSaliency("ig", n_steps=4, chunk_size=None)
    s0 = sal(model, x, y)
    xc = (x + 0.05).clamp(0, 1).requires_grad_(True)
    detached = saliency(sal.surrogate_of(model), xc, y, "ig", 4).detach()
    value = MEMBERS["ig_cosine"].objective(detached, {"s0": s0})
    assert not value.requires_grad  # nothing to differentiate: the direction would be all zeros


def test_smooth_kendall_tends_to_kendall_s_tau_without_ties():
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(4, 6, 7, generator=gen, dtype=torch.float64)
    b = (a + 0.4 * torch.rand(4, 6, 7, generator=gen, dtype=torch.float64)).requires_grad_(True)
    got = smooth_kendall_tau(a, b, temperature=1e-6)
    torch.testing.assert_close(got, kendall_tau(a, b.detach()), atol=1e-3, rtol=0)
    # At the member's temperature it is smooth: every pixel of b gets a gradient.
    smooth_kendall_tau(a, b).sum().backward()
    assert (b.grad != 0).all()


def test_smooth_kendall_pairs_ties_in_the_clean_map_with_nothing():
    a = torch.zeros(1, 4, 4, dtype=torch.float64)
    a[0, 0, :2] = torch.tensor([2.0, 1.0])  # one ordered pair, the rest tied
    b = torch.rand(1, 4, 4, dtype=torch.float64)
    b[0, 0, :2] = torch.tensor([5.0, 0.0])
    concordant = smooth_kendall_tau(a, b, temperature=1e-6)
    b[0, 0, :2] = torch.tensor([0.0, 5.0])
    assert concordant > 0 > smooth_kendall_tau(a, b, temperature=1e-6)


def test_smooth_kendall_on_large_maps_pairs_each_pixel_with_a_grid(monkeypatch):
    monkeypatch.setattr(rank_kendall, "MAX_COLUMNS", 16)
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 8, 8, generator=gen, dtype=torch.float64)
    b = (a + 0.3 * torch.rand(2, 8, 8, generator=gen, dtype=torch.float64)).requires_grad_(True)
    got = smooth_kendall_tau(a, b, temperature=1e-6)
    fa, fb = a.flatten(1), b.detach().flatten(1)
    cols = range(0, 64, 4)  # every 4th pixel: 16 columns
    want = torch.stack([sum(torch.sign(fa[e, i] - fa[e, j]) * torch.sign(fb[e, i] - fb[e, j])
                            for i in range(64) for j in cols) / (64 * 16 - 16) for e in range(2)])
    torch.testing.assert_close(got, want, atol=1e-3, rtol=0)
    smooth_kendall_tau(a, b).sum().backward()
    assert (b.grad != 0).all()  # rows are every pixel, so every pixel of the map moves


def test_the_lens_member_s_mask_is_the_3x3_neighbourhood_of_the_top_k():
    torch.manual_seed(0)
    s0 = torch.rand(2, 7, 9, dtype=torch.float64)
    got = dilated_top_k_mask(s0, 5)
    core = top_k_mask(s0, 5)
    want = torch.zeros_like(s0)
    for b in range(2):
        for r, c in core[b].nonzero().tolist():
            want[b, max(0, r - 1) : r + 2, max(0, c - 1) : c + 2] = 1
    assert torch.equal(got, want)


def test_targeted_target_is_the_clean_map_rolled_by_a_quarter():
    s0 = torch.arange(2 * 8 * 12, dtype=torch.float64).view(2, 8, 12)
    t = shifted_target(s0)
    assert torch.equal(t[:, 2:, 3:], s0[:, :-2, :-3]) and torch.equal(t.sum((1, 2)), s0.sum((1, 2)))


def test_running_worst_case_never_rises_and_ends_at_the_reported_one():
    model, x, y = _model_and_batch(4)
    y[0] = (y[0] + 1) % 3  # not attacked
    r = strong_attribution_attack(model, x, y, seed=2, **SETTINGS)
    att = r.attacked
    assert not att[0] and r.label_kept[att].all() and not r.label_kept[0]
    for m in METRICS:
        h = r.history[m]
        assert h.shape == (4, 4) and torch.isnan(h[:, 0]).all()
        assert (h[1:, att] <= h[:-1, att]).all()
        assert torch.equal(h[-1, att], getattr(r, m)[att])


class _Fragile(torch.nn.Module):
    """Two classes; class 0 wins where pixel (0, 0, 0) is bright (≥ 0.5 + margin) or at the anchor
    image exactly: an attacked anchor flips at every step, a bright image never does."""

    def __init__(self, anchor: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("anchor", anchor)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = 10 * x[:, 0, 0, 0] - 5
        at_anchor = 1 - 1000 * (x - self.anchor).abs().flatten(1).sum(1)
        g = self.act(torch.maximum(bright, at_anchor) + 5) - 5
        return torch.stack([g, torch.zeros_like(g)], 1)


def test_an_image_whose_every_step_flips_the_label_is_flagged_and_scored_one():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0
    model = _Fragile(x[0:1].clone()).double()
    y = torch.zeros(2, dtype=torch.long)
    r = strong_attribution_attack(model, x, y, seed=0, epsilon=0.2, step_size=0.05, steps=3, k_top=6,
                                  eval_k_top=6, n_steps=4)
    assert r.attacked.all()
    assert r.label_kept.tolist() == [False, True]
    assert r.kendall[0] == 1 and r.intersection[0] == 1 and r.spearman[0] == 1  # the paper's convention
    assert (r.member_values["kendall"][:, 0] == 1).all()


@pytest.mark.parametrize("level", list(BUDGETS))
def test_budget_levels_set_restarts_and_steps(level):
    model, x, y = _model_and_batch(2)
    s = AttackSettings(budget=level, seed=1, **SETTINGS)
    want = BUDGETS[level]
    assert s.starts == want.random_starts and s.strong_steps == 4  # the faithful walk's iterations
    r = strong_attribution_attack(model, x, y, s)
    assert sum(m.startswith("topK_random_start_") for m in r.members) == want.random_starts
    assert sum(m.startswith("rank_kendall_") for m in r.members) == want.random_starts
    assert sum(m.startswith("ig_cosine_") for m in r.members) == want.random_starts
    assert r.history["kendall"].shape[0] == s.strong_steps
    # An explicit strong_random_starts wins over the level's.
    assert AttackSettings(budget=level, random_starts=3, **SETTINGS).starts == 3


def test_budget_levels_are_ordered_and_a_bad_one_is_refused():
    assert [b.random_starts for b in BUDGETS.values()] == [1, 2, 4]
    assert [b.share for b in BUDGETS.values()] == [0.45, 0.9, 1.8]
    with pytest.raises(UserInputError, match="attribution_attack_budget='huge'.*fast, standard, thorough"):
        AttackSettings(budget="huge", **SETTINGS)
    assert AttackSettings(budget="fast", **dict(SETTINGS, steps=1)).strong_steps == 1


def test_zero_steps_give_an_empty_history_and_clean_metrics():
    model, x, y = _model_and_batch(2)
    r = strong_attribution_attack(model, x, y, seed=0, **dict(SETTINGS, steps=0))
    assert r.history["kendall"].shape == (0, 2) and not r.label_kept.any()
    assert (r.kendall[r.attacked] == 1).all()

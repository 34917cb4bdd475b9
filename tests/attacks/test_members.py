"""The attack-member registry: every registered member runs end to end at a tiny size on real MNIST.

Registry-driven (like timm's model tests): a member added as a module of ``attacks.members`` is
tested here without an edit. Each one walks the first MNIST test images against a briefly trained
NATURAL model, keeps the label, stays in the ε-ball and the pixel range, and lowers (or keeps)
Kendall's τ of the saliency map.
"""

from __future__ import annotations

import pytest
import torch

from robustattr.attacks import AttackSettings, attribution_attack, strong_attribution_attack
from robustattr.attacks.members import MEMBERS, Member, register_member
from robustattr.attacks.strong_attribution import portfolio
from robustattr.metrics import kendall_tau

from .test_attribution_attack import Tiny

EPS = 0.3
TINY = AttackSettings(epsilon=EPS, step_size=0.05, steps=3, k_top=100, eval_k_top=100, n_steps=4, seed=5)


@pytest.fixture(scope="module")
def mnist(natural_mnist_run):
    """The run's model and the first 8 MNIST test images."""
    from robustattr import data
    from robustattr.checkpoints import load_run_model
    from robustattr.config import load_run_or_config

    cfg = load_run_or_config(natural_mnist_run)
    model, _ = load_run_model(cfg, device="cpu")
    x, y = data.load("mnist", "test", root=cfg.data_root).batch(slice(0, 8))
    return model, x, y


@pytest.mark.parametrize("name", list(MEMBERS))
def test_member_walks_real_mnist_keeping_labels_and_lowering_kendall(name, mnist):
    model, x, y = mnist
    member = MEMBERS[name]
    target = None
    if "target_map" in member.needs:
        target = torch.zeros(28, 28)
        target[:8, :8] = 1.0  # a corner, away from the digit
    r = attribution_attack(model, x, y, TINY, method=name, target_map=target, example_ids=range(len(x)))
    att = r.attacked
    assert att.sum() >= 6
    with torch.no_grad():
        pred = model(r.x_adv).argmax(1)
    assert torch.equal(pred[att], y[att]), "an iterate that flips the label must never be reported"
    assert (r.x_adv - x).abs().max() <= EPS + 1e-6 and r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert (r.kendall[att] <= 1).all() and r.found[att].any(), f"{name} moved no map"
    found = r.found & att
    torch.testing.assert_close(kendall_tau(r.saliency, r.saliency_adv)[found], r.kendall[found])
    assert (r.kendall[found] < 1).all()


def test_registry_metadata_is_consistent():
    assert list(MEMBERS)[:5] == ["topK", "topK_random_start", "mass_center", "random", "map_distance"]
    streams = [m.stream for m in MEMBERS.values()]
    assert len(set(streams)) == len(streams)
    for m in MEMBERS.values():
        assert isinstance(m, Member) and m.name.replace("_", "a").isalnum()
        assert (m.objective is None) == (m.name == "random")
    assert MEMBERS["random"].stochastic and MEMBERS["map_distance"].stochastic and not MEMBERS["topK"].stochastic


def test_default_portfolio_is_unchanged():
    """The strong evaluation's members, order, streams and starts: results stay comparable."""
    walks = portfolio(2, 3)
    assert [w.name for w in walks] == ["topK", "topK_random_start_1", "topK_random_start_2", "mass_center",
                                       "random", "map_distance", "topK_lens", "ig_cosine_1", "ig_cosine_2",
                                       "targeted_shift", "rank_kendall_1", "rank_kendall_2"]
    assert [w.stream for w in walks] == [0, 101, 102, 1, 2, 3, 5, 2001, 2002, 6, 4001, 4002]
    assert [w.random_start for w in walks] == [False, True, True, False, False, True, True, True, True, False,
                                               True, True]
    # The new members always take their direction from all IG points (full_direction).
    assert [w.direction_n_steps for w in walks] == [None, 3, 3, 3, 3, 3, None, None, None, None, None, None]
    assert [w.name for w in portfolio(0)] == ["topK", "mass_center", "random", "map_distance", "topK_lens",
                                              "targeted_shift"]


def _darken_centre(s2, state):
    """A toy objective: move saliency mass off the image's central pixels."""
    h, w = s2.shape[-2:]
    return -s2[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].flatten(1).sum(1)


@pytest.fixture
def user_member():
    member = register_member(Member("darken_centre", _darken_centre, stream=77, order=90, in_portfolio=True))
    yield member
    MEMBERS.pop(member.name)


def test_a_member_registered_from_user_code_joins_both_attacks(user_member):
    torch.manual_seed(0)
    model = Tiny().double()
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    tiny = AttackSettings(epsilon=0.2, step_size=0.05, steps=3, k_top=10, eval_k_top=8, n_steps=4)
    r = attribution_attack(model, x, y, tiny, method="darken_centre")
    assert r.found.all()
    strong = strong_attribution_attack(model, x, y, tiny)
    assert strong.members[-1] == "darken_centre" and strong.member_values["kendall"].shape == (13, 4)
    with pytest.raises(ValueError, match="already registered"):
        register_member(Member("darken_centre", _darken_centre, stream=78))
    with pytest.raises(ValueError, match="stream"):
        register_member(Member("other", _darken_centre, stream=77))
    with pytest.raises(ValueError, match="stream"):
        register_member(Member("other", _darken_centre, stream=101))  # topK_random_start's copies
    with pytest.raises(ValueError, match="unknown state"):
        register_member(Member("other", _darken_centre, needs=("dilated_mask",), stream=79))

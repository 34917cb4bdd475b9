"""topK_lens: the topK walk on the 3×3-dilated top-k set (LENS, Kamath et al.).

LENS scores count a perturbed top-k pixel as kept when it lies within a w×w window (w = 3) of a
clean top-k pixel, so moving saliency mass one pixel over does not lower them. This member moves
mass off the whole neighbourhood: it ascends D = −Σ N⊙S₂, N the {0, 1} mask of the pixels within
a 3×3 window (2-D, clipped at the border, ``metrics.lens_window_dilation``) of the clean ReLU
map's ``k_top`` largest pixels. It starts from a seeded uniform point of the ε-ball ∩ pixel range:
on MNIST the dilated set of k_top = 200 covers most digits, where the clean point's objective is
flat (S₂ = 0 off the set); a random start lights the background so the objective has a gradient.
"""

from __future__ import annotations

from torch import Tensor

from robustattr.attacks.attribution_objectives import top_k_mask
from robustattr.attacks.members import Member, State, StateInputs, register_member, register_state
from robustattr.metrics import lens_window_dilation

__all__ = ["TOP_K_LENS", "LENS_WINDOW", "dilated_top_k_mask"]

#: The LENS authors' window on MNIST (w = 3).
LENS_WINDOW = 3


def dilated_top_k_mask(s0: Tensor, k: int, window: int = LENS_WINDOW) -> Tensor:
    """(B, H, W) {0, 1} mask in s0's dtype: the ``window``×``window`` neighbourhood of the ``k``
    largest pixels of each clean map s0 (B, H, W)."""
    b, h, w = s0.shape
    core = top_k_mask(s0, k).flatten(1) > 0
    return lens_window_dilation(core, h, w, window).view(b, h, w).to(s0.dtype)


def _build(inputs: StateInputs) -> Tensor:
    return dilated_top_k_mask(inputs.s0, inputs.k_top)


register_state("lens_mask", _build)


def objective(s2: Tensor, state: State) -> Tensor:
    """(B,) −Σ N⊙S₂ for maps s2 (B, H, W) and the dilated masks ``state["lens_mask"]`` (B, H, W)."""
    return -(state["lens_mask"] * s2).flatten(1).sum(1)


def flat(s2: Tensor, state: State) -> Tensor:
    """(B,) bool: S₂ is 0 off the dilated set, so D is constant near here (read from exact zeros)."""
    return ((1 - state["lens_mask"]) * s2).flatten(1).sum(1) == 0


TOP_K_LENS = register_member(Member(
    "topK_lens", objective, flat, needs=("lens_mask",), random_start=True, stream=5, order=41,
    in_portfolio=True, full_direction=True,
    summary="from a random start, move saliency mass off the 3x3-dilated clean top-k set (LENS)",
))

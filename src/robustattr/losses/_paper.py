"""The paper's training objectives as losses for your own training loop.

Each is a small callable holding hyperparameters: ``loss = criterion(model, x, y)`` runs the inner
PGD (with ``model`` in eval mode, its parameters frozen, both restored) and returns the scalar to
minimise, with the graph attached. The numbers are those of ``robustattr train`` for the same
settings (same functions underneath). Any ``nn.Module`` mapping (B, C, H, W) images to (B, classes)
logits works: the IG regulariser differentiates the model itself, no surrogate is involved.

    import torch
    from robustattr.losses import IGNorm

    model = MyCNN()                                   # any nn.Module: images -> logits
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    criterion = IGNorm(epsilon=0.1, lam=1.0, m=10, approx_factor=2,
                       pgd_steps=10, step_size=0.02, bounds=(0.0, 1.0))
    for x, y in loader:                               # x (B, C, H, W) float in bounds, y (B,) int64
        model.train()
        optimizer.zero_grad()
        loss = criterion(model, x, y)                 # CE + λ·‖IG(x, x')‖₁, x' from PGD
        loss.backward()
        optimizer.step()
    terms = criterion.terms(model, x, y).logs         # nat_acc, adv_acc, ig, ... (0-dim tensors)

Reduction: ``"sum"`` over the batch (the paper's MNIST setting and the default here) or ``"mean"``;
the regulariser is always the batch sum, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from robustattr.errors import UserInputError
from robustattr.training.objectives import LossOut, ObjectiveParams, ig_norm, ig_sum_norm, madry

__all__ = ["IGNorm", "IGSumNorm", "Madry"]

_REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class _Objective:
    """Shared fields: the PGD threat model and the loss reduction."""

    epsilon: float = 0.3  # the MNIST presets' threat model (spec §6)
    pgd_steps: int = 40
    step_size: float = 0.01
    bounds: tuple[float, float] = (0.0, 1.0)
    random_start: bool = True
    reduction: str = "sum"
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.reduction not in _REDUCTIONS:
            raise UserInputError(f"reduction={self.reduction!r} is not supported; choose from sum, mean")
        for name in ("epsilon", "step_size"):
            if not getattr(self, name) > 0:
                raise UserInputError(f"{name}={getattr(self, name)!r} must be > 0")
        if int(self.pgd_steps) < 0:
            raise UserInputError(f"pgd_steps={self.pgd_steps!r} must be >= 0")

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        """The loss and its detached parts (``LossOut.logs``: nat_acc, adv_acc, ig, ...)."""
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """Scalar loss, differentiable w.r.t. the parameters of ``model``.

        Args:
            model: (B, C, H, W) float → (B, classes) logits.
            x: (B, C, H, W) float in ``bounds``.
            y: (B,) int64 labels.
        """
        return self.terms(model, x, y).loss

    def _base(self, loss_func: str, **extra: object) -> ObjectiveParams:
        return ObjectiveParams(
            reduction=self.reduction, weight_decay=float(self.weight_decay), epsilon=float(self.epsilon),
            num_steps=int(self.pgd_steps), step_size=float(self.step_size), random_start=self.random_start,
            loss_func=loss_func, bounds=(float(self.bounds[0]), float(self.bounds[1])), **extra,
        )


@dataclass(frozen=True)
class _Regularised(_Objective):
    """Adds the IG regulariser's fields: weight ``lam``, ``m`` path points, ``approx_factor``."""

    lam: float = 1.0  # IG-NORM's MNIST preset (configs/mnist/ig-norm.json)
    m: int = 50
    approx_factor: int = 5
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lam < 0:
            raise UserInputError(f"lam={self.lam!r} must be >= 0")
        if not 1 <= int(self.approx_factor) <= int(self.m):
            raise UserInputError(f"approx_factor={self.approx_factor!r} must lie in 1..m (m={self.m})")

    def _reg_params(self, loss_func: str) -> ObjectiveParams:
        return self._base(loss_func, lam=float(self.lam), m=int(self.m), approx_factor=int(self.approx_factor),
                          chunk_size=self.chunk_size, pgd_chunk_size=self.chunk_size)


@dataclass(frozen=True)
class IGNorm(_Regularised):
    """IG-NORM (Chen et al. 2019, eq. 5): CE(f(x), y) + λ·‖IG(x, x')‖₁ (+ wd·Σ‖w‖²/2).

    x' maximises the IG term over the L∞ ball of radius ``epsilon`` by ``pgd_steps`` steps of size
    ``step_size`` (loss ``ar_approx``: every ``approx_factor``-th of the ``m`` path points); the
    update's IG uses all ``m`` points. ``chunk_size`` (examples per double-backprop pass) bounds
    memory: the regulariser of each chunk is then backpropagated inside the call and the returned
    loss carries it as a constant, so call ``loss.backward()`` once, as usual.

    Args:
        epsilon, step_size: in x's units (``bounds``); pgd_steps: K.
        lam: λ; m: IG path points; approx_factor: 1 ≤ a ≤ m.
        reduction: "sum" (default) or "mean" cross-entropy; weight_decay: wd.
    Shape:
        x: (B, C, H, W) float in ``bounds``; y: (B,) int64; returns a 0-dim tensor.
    """

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return ig_norm(model, x, y, self._reg_params("ar_approx"))


@dataclass(frozen=True)
class IGSumNorm(_Regularised):
    """IG-SUM-NORM (Chen et al. 2019, eq. 6): CE(f(x'), y) + β·‖IG(x, x')‖₁, β = ``lam``.

    x' maximises CE + β·‖IG‖₁ (loss ``adv_ar_approx``) by PGD; there is no clean term, as in the
    original. Arguments as :class:`IGNorm`.

    Shape:
        x: (B, C, H, W) float in ``bounds``; y: (B,) int64; returns a 0-dim tensor.
    """

    lam: float = 0.1  # β of IG-SUM-NORM's MNIST preset (configs/mnist/ig-sum-norm.json)

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return ig_sum_norm(model, x, y, self._reg_params("adv_ar_approx"))


@dataclass(frozen=True)
class Madry(_Objective):
    """Madry et al.'s PGD adversarial training: CE(f(x'), y) with x' from cross-entropy PGD.

    Args:
        epsilon, step_size: in x's units; pgd_steps: K; reduction, weight_decay as :class:`IGNorm`.
    Shape:
        x: (B, C, H, W) float in ``bounds``; y: (B,) int64; returns a 0-dim tensor.
    """

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> LossOut:
        return madry(model, x, y, self._base("xent"))

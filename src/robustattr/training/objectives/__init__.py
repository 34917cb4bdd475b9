"""The four training objectives, keyed by the config's ``training_objective``.

Each is ``(model, x, y, params: ObjectiveParams) -> LossOut``; see ``_base`` for the contract.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from robustattr.errors import UserInputError, did_you_mean
from robustattr.training.objectives._base import LossOut, ObjectiveParams, resolve_reduction
from robustattr.training.objectives.ig_norm import ig_norm
from robustattr.training.objectives.ig_sum_norm import ig_sum_norm
from robustattr.training.objectives.madry import madry
from robustattr.training.objectives.natural import natural

__all__ = ["OBJECTIVES", "Objective", "LossOut", "ObjectiveParams", "get_objective", "resolve_reduction",
           "natural", "madry", "ig_norm", "ig_sum_norm", "uses_pgd"]

Objective = Callable[[nn.Module, Tensor, Tensor, ObjectiveParams], LossOut]

#: ``training_objective`` → objective (the original's script names: nat, adv, ar, adv_ar).
OBJECTIVES: dict[str, Objective] = {
    "nat": natural,
    "adv": madry,
    "ar": ig_norm,
    "adv_ar": ig_sum_norm,
}


def get_objective(name: str) -> Objective:
    """Look up ``training_objective``; unknown names raise UserInputError listing the choices."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UserInputError(
            f"training_objective='{name}' is unknown{did_you_mean(name, OBJECTIVES)}; "
            f"choose from {', '.join(OBJECTIVES)}"
        ) from None


def uses_pgd(name: str) -> bool:
    """True for the objectives that run PGD (and so draw a random start) every step."""
    return OBJECTIVES[name] is not natural

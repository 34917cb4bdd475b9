"""Training objectives, one module each, registered with their metadata (``registry``).

Each is ``(model, x, y, params: ObjectiveParams) -> LossOut``; see ``_base`` for the contract.
Importing this package imports every module in its folder, and each module registers its
objective, so a new objective is a new file here (``docs/extending.md``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from torch import Tensor, nn

from robustattr.training.objectives._base import LossOut, ObjectiveParams, resolve_reduction
from robustattr.training.objectives.registry import (
    OBJECTIVES as REGISTRY, ObjectiveInfo, all_objective_keys, hyperparameters, objective_info, objective_key,
    objective_keys, objective_names, register_objective, resume_keys,
)

Objective = Callable[[nn.Module, Tensor, Tensor, ObjectiveParams], LossOut]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "registry":
        importlib.import_module(f"{__name__}.{_module.name}")

from robustattr.training.objectives.ig_norm import ig_norm  # noqa: E402
from robustattr.training.objectives.ig_sum_norm import ig_sum_norm  # noqa: E402
from robustattr.training.objectives.madry import madry  # noqa: E402
from robustattr.training.objectives.natural import natural  # noqa: E402

__all__ = ["OBJECTIVES", "REGISTRY", "Objective", "ObjectiveInfo", "LossOut", "ObjectiveParams", "get_objective",
           "resolve_reduction", "natural", "madry", "ig_norm", "ig_sum_norm", "uses_pgd", "objective_info",
           "objective_names", "objective_keys", "all_objective_keys", "resume_keys", "register_objective",
           "objective_key", "hyperparameters"]


class _Functions(dict):
    """``training_objective`` → function, read live from the registry (so later registrations show)."""

    def __getitem__(self, name: str) -> Objective:
        return REGISTRY[name].function

    def __iter__(self):
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)

    def __contains__(self, name: object) -> bool:
        return name in REGISTRY

    def keys(self):
        return REGISTRY.keys()

    def items(self):
        return [(n, i.function) for n, i in REGISTRY.items()]

    def values(self):
        return [i.function for i in REGISTRY.values()]

    def get(self, name, default=None):
        return REGISTRY[name].function if name in REGISTRY else default


#: ``training_objective`` → objective function (a view of the registry).
OBJECTIVES: dict[str, Objective] = _Functions()


def get_objective(name: str) -> Objective:
    """The function of the objective any accepted spelling names; unknown ones raise UserInputError."""
    return objective_info(name).function


def uses_pgd(name: str) -> bool:
    """True for the objectives that run an inner maximisation (and so draw a random start) every step."""
    return objective_info(name).uses_inner_attack

"""The paper's architectures and their registry.

``create(name)`` builds a freshly initialised model. Every model's ``forward(x, softplus=False)``
returns logits; ``softplus=True`` (or the ``surrogate(model)`` view) runs the smooth surrogate
with the same weights, which attribution attacks differentiate through.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator

from torch import Tensor, nn

from robustattr.errors import UserInputError, did_you_mean
from robustattr.models.madry_cnn import MadryCNN
from robustattr.models.resnet import MadryResNet

__all__ = ["MODELS", "MadryCNN", "MadryResNet", "create", "is_factory", "surrogate", "parameter_count",
           "weight_decay_parameters"]

# name -> (constructor taking num_classes, default num_classes)
MODELS: dict[str, tuple[Callable[[int], nn.Module], int]] = {
    "mnist_cnn": (lambda n: MadryCNN(num_classes=n), 10),
    "gtsrb_resnet": (lambda n: MadryResNet(n, units_per_stage=2), 43),
    "flower_resnet": (lambda n: MadryResNet(n, units_per_stage=1), 17),
}


def create(name: str, num_classes: int | None = None, input_shape: tuple[int, int, int] | None = None) -> nn.Module:
    """Build the architecture ``name`` with the original initialisation (seed torch first).

    ``name`` is a key of :data:`MODELS` or a user's ``"package.module:factory"``, imported (the
    current directory is searched too) and called as ``factory(num_classes, input_shape)`` with
    ``input_shape`` = (C, H, W); it must return an ``nn.Module``.
    """
    if is_factory(name):
        if num_classes is None or input_shape is None:
            raise ValueError(f"model '{name}' is a factory: give num_classes and input_shape")
        return _from_factory(name, num_classes, tuple(input_shape))
    if name not in MODELS:
        raise UserInputError(
            f"unknown model '{name}'{did_you_mean(name, MODELS)}; choose from {', '.join(MODELS)} "
            "or give a factory as \"package.module:function\""
        )
    constructor, default_classes = MODELS[name]
    return constructor(num_classes or default_classes)


_FACTORY = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*")


def is_factory(name: str) -> bool:
    """True for ``"package.module:factory"`` names."""
    return isinstance(name, str) and _FACTORY.fullmatch(name) is not None


def _from_factory(name: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    module_name, _, attr = name.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # `robustattr` run from a project folder finds its modules, as python -m does
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserInputError(f"model '{name}': cannot import module '{module_name}' ({exc}); it must be "
                             "importable from the current directory or an installed package") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserInputError(f"model '{name}': module '{module_name}' has no function '{attr}'")
    try:
        inspect.signature(factory).bind(num_classes, input_shape)
    except TypeError:
        raise UserInputError(f"model '{name}': {attr}{inspect.signature(factory)} cannot be called as "
                             f"{attr}(num_classes, input_shape), e.g. {attr}(10, (1, 28, 28))") from None
    except ValueError:  # no signature to inspect (a builtin): just call it
        pass
    model = factory(num_classes, input_shape)
    if not isinstance(model, nn.Module):
        raise UserInputError(f"model '{name}': {attr}(num_classes, input_shape) returned a "
                             f"{type(model).__name__}, not a torch.nn.Module")
    return model


class _Surrogate(nn.Module):
    """Weight-sharing view of a model that always runs its softplus surrogate."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, softplus=True)


def surrogate(model: nn.Module) -> nn.Module:
    """Return a module whose ``forward(x)`` is ``model(x, softplus=True)``; no weights are copied."""
    return _Surrogate(model)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def weight_decay_parameters(model: nn.Module) -> Iterator[Tensor]:
    """Conv and FC weights, not biases: what the original's ``Σ‖w‖²/2`` term covers (spec §2.2)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield module.weight

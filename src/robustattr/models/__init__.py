"""The paper's architectures and their registry.

``create(name)`` builds a freshly initialised model. Every model's ``forward(x, softplus=False)``
returns logits; ``softplus=True`` (or the ``surrogate(model)`` view) runs the smooth surrogate
with the same weights, which attribution attacks differentiate through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import Tensor, nn

from robustattr.errors import UserInputError, did_you_mean
from robustattr.models.madry_cnn import MadryCNN
from robustattr.models.resnet import MadryResNet

__all__ = ["MODELS", "MadryCNN", "MadryResNet", "create", "surrogate", "parameter_count", "weight_decay_parameters"]

# name -> (constructor taking num_classes, default num_classes)
MODELS: dict[str, tuple[Callable[[int], nn.Module], int]] = {
    "mnist_cnn": (lambda n: MadryCNN(num_classes=n), 10),
    "gtsrb_resnet": (lambda n: MadryResNet(n, units_per_stage=2), 43),
    "flower_resnet": (lambda n: MadryResNet(n, units_per_stage=1), 17),
}


def create(name: str, num_classes: int | None = None) -> nn.Module:
    """Build the architecture ``name`` with the original initialisation (seed torch first)."""
    if name not in MODELS:
        raise UserInputError(
            f"unknown model '{name}'{did_you_mean(name, MODELS)}; choose from {', '.join(MODELS)}"
        )
    constructor, default_classes = MODELS[name]
    return constructor(num_classes or default_classes)


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

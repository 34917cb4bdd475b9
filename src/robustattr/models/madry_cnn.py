"""The MNIST / Fashion-MNIST CNN of Madry et al.'s MNIST challenge (spec §2.1).

conv 5×5 1→32, max-pool 2, conv 5×5 32→64, max-pool 2, FC 3136→1024, FC 1024→10; ReLU;
3,274,634 parameters; input (B, 1, 28, 28) in [0, 1].
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.models.layers import relu, truncated_normal_


class MadryCNN(nn.Module):
    """Madry's MNIST CNN. ``forward(x, softplus=True)`` is the surrogate with the same weights."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        side = image_size // 4
        self.fc1 = nn.Linear(side * side * 64, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        for layer in (self.conv1, self.conv2, self.fc1, self.fc2):
            truncated_normal_(layer.weight, std=0.1)
            nn.init.constant_(layer.bias, 0.1)

    def forward(self, x: Tensor, *, softplus: bool = False) -> Tensor:
        """x: (B, 1, 28, 28) float in [0, 1] → logits (B, num_classes)."""
        # Pool before the activation: ReLU and softplus are non-decreasing, so max-pool commutes with
        # them (same values, same gradients) and the activation runs on a 4× smaller tensor.
        h = relu(F.max_pool2d(self.conv1(x), 2), softplus)
        h = relu(F.max_pool2d(self.conv2(h), 2), softplus)
        # Flatten in TF's (h, w, c) order so fc1's rows mean what they meant in the original.
        h = h.permute(0, 2, 3, 1).flatten(1)
        h = relu(self.fc1(h), softplus)
        return self.fc2(h)

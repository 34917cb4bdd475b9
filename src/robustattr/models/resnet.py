"""The GTSRB / Flower-17 ResNet: Madry's CIFAR-10 challenge ResNet without batch norm (spec §2.2).

Per-image standardisation inside the model, a 3×3 stem, pre-activation residual units with
widths 16-16-32-64, leaky ReLU 0.1, global average pooling and one FC layer. GTSRB uses two
units per stage (173,723 parameters), Flower one (75,265). Input (B, 3, H, W) in [0, 255].
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from robustattr.models.layers import fan_out_normal_, leaky_relu, pad_same_stride2, standardize_per_image


class ResidualUnit(nn.Module):
    """Pre-activation unit: act → conv3×3(stride) → act → conv3×3, plus the shortcut.

    With ``activate_before_residual`` the shortcut starts after the first activation, as in
    Madry's first stage. Widening shortcuts average-pool by the stride and zero-pad channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activate_before_residual: bool) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.activate_before_residual = activate_before_residual
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1 if stride == 1 else 0, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor, softplus: bool = False) -> Tensor:
        if self.activate_before_residual:
            x = leaky_relu(x, softplus)
            shortcut = x
        else:
            shortcut = x
            x = leaky_relu(x, softplus)
        if self.stride != 1:
            x = pad_same_stride2(x, 3)
        r = self.conv2(leaky_relu(self.conv1(x), softplus))
        if self.in_channels != self.out_channels:
            if self.stride != 1:
                shortcut = F.avg_pool2d(shortcut, self.stride, self.stride)
            extra = (self.out_channels - self.in_channels) // 2
            shortcut = F.pad(shortcut, (0, 0, 0, 0, extra, extra))
        return r + shortcut


class MadryResNet(nn.Module):
    """The paper's narrow ResNet for [0, 255] RGB images. ``forward(x, softplus=True)`` is the surrogate."""

    def __init__(self, num_classes: int, units_per_stage: int) -> None:
        super().__init__()
        widths, strides, abr = (16, 16, 32, 64), (1, 2, 2), (True, False, False)
        self.init_conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        units = []
        for stage in range(3):
            units.append(ResidualUnit(widths[stage], widths[stage + 1], strides[stage], abr[stage]))
            units.extend(
                ResidualUnit(widths[stage + 1], widths[stage + 1], 1, False) for _ in range(units_per_stage - 1)
            )
        self.units = nn.ModuleList(units)
        self.fc = nn.Linear(widths[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out_normal_(module.weight)
        # TF "uniform unit scaling" with factor 1: U(±√(3 / fan_in)).
        bound = math.sqrt(3.0 / widths[-1])
        nn.init.uniform_(self.fc.weight, -bound, bound)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor, *, softplus: bool = False) -> Tensor:
        """x: (B, 3, H, W) float in [0, 255] → logits (B, num_classes)."""
        h = self.init_conv(standardize_per_image(x))
        for unit in self.units:
            h = unit(h, softplus)
        h = leaky_relu(h, softplus).mean(dim=(2, 3))
        return self.fc(h)

"""Where tensors live: ``resolve_device`` turns the config's ``device`` (auto, cpu, cuda, cuda:N) into a
``torch.device``, with a one-line error when the machine has no such device."""

from __future__ import annotations

import re

import torch

from robustattr.errors import UserInputError

__all__ = ["resolve_device", "DEVICE_PATTERN"]

#: What the config's ``device`` key accepts.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; an unavailable CUDA device is a UserInputError."""
    if not isinstance(name, str) or re.fullmatch(DEVICE_PATTERN, name) is None:
        raise UserInputError(f"device '{name}' must be auto, cpu, cuda or cuda:N")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError(f"device '{name}' requested but CUDA is not available "
                                 f"(torch {torch.__version__}); use --set device=cpu or device=auto")
        count, index = torch.cuda.device_count(), int(name.partition(":")[2] or 0)
        if index >= count:
            raise UserInputError(f"device '{name}' does not exist: this machine has {count} CUDA "
                                 f"device(s), cuda:0..cuda:{count - 1}")
    return torch.device(name)

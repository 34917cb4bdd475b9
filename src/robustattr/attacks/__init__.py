"""Attacks: L∞ PGD with the original's losses, and (from the evaluation layer) attribution attacks.

Shared helpers (model guard, random start, projection) live in ``attacks._common``.
"""

from robustattr.attacks.pgd import PGD_LOSSES, pgd, pgd_loss

__all__ = ["pgd", "pgd_loss", "PGD_LOSSES"]

from robustattr.attacks.attribution_attack import AttributionAttackResult, attribution_attack  # noqa: E402

__all__ += ["attribution_attack", "AttributionAttackResult"]

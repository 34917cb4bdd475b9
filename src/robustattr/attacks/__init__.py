"""Attacks: L∞ PGD with the original's losses, and attribution attacks on saliency maps.

- ``attacks.threat_model``: the ε rule, the U(−ε, ε) random start, projection (every attack's).
- ``attacks.walk``: the attribution-walk engine (public), run by
- ``attacks.attribution_attack`` (one member, the faithful way) and ``attacks.strong_attribution``
  (the worst case over a portfolio of members);
- ``attacks.members``: the registered members, one module each (``MEMBERS``, ``register_member``);
- ``attacks.settings``: :class:`AttackSettings`, every setting of an attribution attack in one value.
"""

from robustattr.attacks.pgd import PGD_LOSSES, pgd, pgd_loss

__all__ = ["pgd", "pgd_loss", "PGD_LOSSES"]

from robustattr.attacks.members import MEMBERS, Member, register_member  # noqa: E402
from robustattr.attacks.settings import AttackSettings  # noqa: E402
from robustattr.attacks.threat_model import check_epsilon, random_start  # noqa: E402
from robustattr.attacks.attribution_attack import AttributionAttackResult, attribution_attack  # noqa: E402
from robustattr.attacks.strong_attribution import (  # noqa: E402
    StrongAttributionResult, portfolio, strong_attribution_attack,
)

__all__ += ["attribution_attack", "AttributionAttackResult", "AttackSettings", "MEMBERS", "Member",
            "register_member", "check_epsilon", "random_start", "strong_attribution_attack",
            "StrongAttributionResult", "portfolio"]

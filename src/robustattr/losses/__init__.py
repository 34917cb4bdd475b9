"""The training objectives as losses for your own training loop: ``loss = criterion(model, x, y)``.

The paper's (``IGNorm``, ``IGSumNorm``, ``Madry``; ``_paper``) and the later work's (``TRADES``,
``IGR``, ``LGA``, ``SSR``, ``ART``; ``successors``). Each is a small frozen callable holding its
hyper-parameters; the numbers are those of ``robustattr train`` for the same settings (the same
objective functions underneath). The later ones default every argument to its MNIST preset
(``configs/mnist/<name>.json``) and also expose ``regularizer(model, x, x_adv, y)``, the weighted
per-example term (B,) their loss adds to its base, for a given x′.

    import torch
    from robustattr.losses import TRADES

    criterion = TRADES()                              # beta=1.0, epsilon=0.3, 40 steps of 0.01
    for x, y in loader:                               # x (B, C, H, W) float in bounds, y (B,) int64
        optimizer.zero_grad()
        criterion(model, x, y).backward()
        optimizer.step()
"""

from robustattr.losses._paper import IGNorm, IGSumNorm, Madry
from robustattr.losses.successors import ART, IGR, LGA, SSR, TRADES

__all__ = ["IGNorm", "IGSumNorm", "Madry", "TRADES", "IGR", "LGA", "SSR", "ART"]

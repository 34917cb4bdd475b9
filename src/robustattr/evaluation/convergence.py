"""Convergence of the strong attribution evaluation: the running worst case against the budget.

Two axes, both read from the per-example CSV so a resumed evaluation reports the same numbers:

- steps: each metric's worst case over all members after t steps, at t = S, S // 2, S // 4, …, 1
  (S the walks' steps; CSV columns ``at_step_{t}.{metric}``), so the last point pair is exactly
  the last doubling of steps;
- walks: the worst case over the first j walks of the portfolio (members × restarts, in portfolio
  order: topK first), j = 1 … M, from the member columns ``{name}.{metric}``.

Means run over the attacked images (failures scored 1, the paper's convention). A run whose last
doubling (S // 2 → S steps, or M // 2 → M walks) still lowered the mean IN or CO by more than
:data:`THRESHOLD` is flagged ``still_falling``: a larger budget would likely lower it further.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["THRESHOLD", "step_grid", "step_columns", "convergence"]

#: The mean IN or CO drop over the last doubling above which a run is flagged as not converged.
THRESHOLD = 0.01
#: The result files' names of the metrics (CSV metric → JSON key).
_KEYS = {"intersection": "top_k_intersection", "spearman": "spearman", "kendall": "kendall"}
#: The flag looks at IN and CO (the paper's two attribution metrics).
_FLAGGED = ("top_k_intersection", "kendall")


def step_grid(steps: int) -> list[int]:
    """The steps at which the running worst case is recorded: S, S // 2, S // 4, …, 1, ascending."""
    grid, t = set(), int(steps)
    while t >= 1:
        grid.add(t)
        t //= 2
    return sorted(grid)


def step_columns(steps: int, metrics: Sequence[str]) -> tuple[str, ...]:
    """The CSV columns of the running worst case at :func:`step_grid` (``at_step_{t}.{metric}``)."""
    return tuple(f"at_step_{t}.{m}" for t in step_grid(steps) for m in metrics)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def _drop(curve: list[float], at: list[int], full: int) -> float | None:
    """Mean at ``full // 2`` minus mean at ``full`` (≥ 0); None when the grid has no half point."""
    half = full // 2
    if half < 1 or half not in at or full not in at:
        return None
    return curve[at.index(half)] - curve[at.index(full)]


def convergence(rows: list[dict[str, Any]], members: Sequence[str], steps: int,
                metrics: Sequence[str] = ("intersection", "spearman", "kendall")) -> dict[str, Any]:
    """The ``convergence`` object of ``eval_attribution_strong.json`` from the CSV ``rows`` (dicts
    with ``correct``, the member columns and the step columns), the portfolio's ``members`` and
    the walks' ``steps``: the mean running worst case on both axes, the last doubling's drops and
    the ``still_falling`` flag (module docstring)."""
    attacked = [r for r in rows if r["correct"]]
    at_steps = step_grid(steps)
    by_steps: dict[str, Any] = {"at": at_steps}
    by_walks: dict[str, Any] = {"at": list(range(1, len(members) + 1)), "members": list(members)}
    for m in metrics:
        by_steps[_KEYS[m]] = [_mean([r[f"at_step_{t}.{m}"] for r in attacked]) for t in at_steps]
        running = [math.inf] * len(attacked)
        curve = []
        for name in members:
            running = [min(low, r[f"{name}.{m}"]) for low, r in zip(running, attacked)]
            curve.append(_mean(running))
        by_walks[_KEYS[m]] = curve
    last = {axis: {key: _drop(curves[key], curves["at"], curves["at"][-1] if curves["at"] else 0)
                   for key in _FLAGGED}
            for axis, curves in (("steps", by_steps), ("walks", by_walks))}
    falling = any(d is not None and d > THRESHOLD for axis in last.values() for d in axis.values())
    return {"steps": by_steps, "walks": by_walks, "last_doubling": last, "threshold": THRESHOLD,
            "still_falling": falling}

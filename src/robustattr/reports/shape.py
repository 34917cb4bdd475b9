"""Does a set of Table 1 rows show the paper's shape? Each criterion judged, with its value.

The paper's claim is a shape, not exact numbers: the two robust-attribution objectives keep the
IG map far better than NATURAL training under the attribution attack, Madry's adversarial training
lies in between, and the price in natural accuracy is small. Judged per dataset and per attribution
evaluation (faithful, strong), from the rows ``tables.collect_rows`` reads:

- IG-NORM and IG-SUM-NORM each above NATURAL by at least ``IN_GAP`` top-k intersection and
  ``CO_GAP`` Kendall's τ (higher = the map survived the attack better);
- each costing at most ``NA_COST`` natural accuracy against NATURAL;
- Madry strictly between NATURAL and the lower of the two robust objectives, on IN and on CO.

``judge_aims`` checks the per-unit aims of the CPU reproduction (docs/results.md): adversarial
accuracy of Madry and of the robust objectives, and their NA cost against the paper's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from robustattr.reports.tables import RunRow

__all__ = ["Criterion", "judge_shape", "judge_aims", "format_criteria", "IN_GAP", "CO_GAP", "NA_COST"]

IN_GAP = 0.15  # top-k intersection, as a fraction
CO_GAP = 0.08  # Kendall's tau
NA_COST = 0.06  # natural accuracy, as a fraction
ROBUST = ("IG-NORM", "IG-SUM-NORM")
#: The reproduction's adversarial-accuracy aims (fractions), per dataset and method.
AA_AIMS = {("mnist", "Madry"): 0.80, ("fashion-mnist", "Madry"): 0.70,
           **{(d, m): 0.60 for d in ("mnist", "fashion-mnist") for m in ROBUST}}
NA_COST_SLACK = 0.03  # a robust unit may cost the paper's NA cost plus this


@dataclass(frozen=True)
class Criterion:
    """One judged statement: ``value`` (None when a row is missing) against ``required``."""

    dataset: str
    evaluation: str  # faithful | strong | training (aims that do not depend on the attribution attack)
    statement: str
    value: str
    required: str
    met: bool | None  # None: not judged (a row or a number is missing)


def _by_method(rows: Iterable[RunRow]) -> dict[tuple[str, str], dict[str, RunRow]]:
    groups: dict[tuple[str, str], dict[str, RunRow]] = {}
    for r in rows:
        groups.setdefault((r.dataset, r.evaluation), {})[r.method] = r
    return groups


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def judge_shape(rows: Iterable[RunRow]) -> list[Criterion]:
    """The shape criteria for every (dataset, evaluation) that has a NATURAL row."""
    out = []
    for (dataset, evaluation), by in sorted(_by_method(rows).items()):
        nat = by.get("NATURAL")
        if nat is None:
            continue

        def add(statement: str, value: float | None, required: str, met: bool | None, fmt: str) -> None:
            shown = "—" if value is None else format(value, fmt)
            out.append(Criterion(dataset, evaluation, statement, shown, required, None if value is None else met))

        for method in ROBUST:
            r = by.get(method)
            if r is None:
                continue
            in_gap = _gap(r.top_k_intersection, nat.top_k_intersection)
            co_gap = _gap(r.kendall, nat.kendall)
            na_cost = _gap(nat.natural_accuracy, r.natural_accuracy)
            add(f"{method} IN − NATURAL IN", None if in_gap is None else 100 * in_gap, f"≥ +{100 * IN_GAP:.0f} points",
                in_gap is not None and in_gap >= IN_GAP, "+.1f")
            add(f"{method} CO − NATURAL CO", co_gap, f"≥ +{CO_GAP:.2f}", co_gap is not None and co_gap >= CO_GAP, "+.3f")
            add(f"NATURAL NA − {method} NA", None if na_cost is None else 100 * na_cost, f"≤ {100 * NA_COST:.0f} points",
                na_cost is not None and na_cost <= NA_COST, ".1f")
        madry = by.get("Madry")
        robust = [by[m] for m in ROBUST if m in by]
        if madry is not None and robust:
            for label, attr, fmt in (("IN", "top_k_intersection", ".3f"), ("CO", "kendall", ".3f")):
                values = [getattr(r, attr) for r in (nat, madry, *robust)]
                if None in values:
                    add(f"Madry {label} between NATURAL and the robust objectives", None, "", None, fmt)
                    continue
                low, mid, high = values[0], values[1], min(values[2:])
                out.append(Criterion(dataset, evaluation, f"Madry {label} between NATURAL and the robust objectives",
                                     f"{low:{fmt}} < {mid:{fmt}} < {high:{fmt}}", "strictly between", low < mid < high))
    return out


def judge_aims(rows: Iterable[RunRow]) -> list[Criterion]:
    """The reproduction's per-unit aims: AA of Madry and the robust objectives, and the robust
    objectives' NA cost against NATURAL within the paper's cost plus ``NA_COST_SLACK``."""
    out = []
    seen: set[tuple[str, str]] = set()
    rows = list(rows)
    natural = {r.dataset: r for r in rows if r.method == "NATURAL"}
    for r in rows:
        key = (r.dataset, r.method)
        if key in seen or key not in AA_AIMS:
            continue
        seen.add(key)
        aim = AA_AIMS[key]
        aa = r.adversarial_accuracy
        out.append(Criterion(r.dataset, "training", f"{r.method} AA", "—" if aa is None else f"{100 * aa:.1f}%",
                             f"≥ {100 * aim:.0f}%", None if aa is None else aa >= aim))
        nat = natural.get(r.dataset)
        paper, paper_nat = r.paper, nat.paper if nat else None
        if r.method in ROBUST and nat is not None and paper and paper_nat:
            cost = _gap(nat.natural_accuracy, r.natural_accuracy)
            allowed = paper_nat["NA"] - paper["NA"] + NA_COST_SLACK
            out.append(Criterion(r.dataset, "training", f"NATURAL NA − {r.method} NA",
                                 "—" if cost is None else f"{100 * cost:.1f} points",
                                 f"≤ {100 * allowed:.1f} points (paper's cost + {100 * NA_COST_SLACK:.0f})",
                                 None if cost is None else cost <= allowed))
    return out


def format_criteria(criteria: list[Criterion]) -> str:
    """A Markdown table of the criteria and a count of those met."""
    lines = ["| dataset | evaluation | criterion | ours | required | met |", "|---|---|---|---|---|---|"]
    for c in criteria:
        met = {True: "yes", False: "**no**", None: "not judged"}[c.met]
        lines.append(f"| {c.dataset} | {c.evaluation} | {c.statement} | {c.value} | {c.required} | {met} |")
    judged = [c for c in criteria if c.met is not None]
    lines += ["", f"{sum(c.met for c in judged)} of {len(judged)} judged criteria met."]
    return "\n".join(lines) + "\n"

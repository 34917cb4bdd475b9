"""The benchmark's report: table with intervals, cost–robustness frontier, verdict (docs/benchmark.md).

Pure functions over the files ``robustattr benchmark`` leaves in ``results/benchmark/<dataset>/<method>/``
(``unit.json``, ``eval_pgd.json``, ``eval_attribution_strong_examples.csv``, ``eval_certify_examples.csv``);
they work on whatever units are finished. Intervals: NA and AA get the binomial standard error
sqrt(p (1 − p) / n); every attribution metric and the certificate a seeded percentile-bootstrap 95 %
interval of the mean over the per-image rows of the correctly classified (so attacked) images. Strong
IN and CO come in both failure conventions: an image no member found a label-keeping iterate for
scored (1, 1) as the paper does, or dropped from the mean as ART/SSR do. Units are also compared
with the reference image by image (``paired_difference``: a paired bootstrap over the test images
both attacked), which separates real differences from overlapping intervals.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from robustattr.files import atomic_file
from robustattr.training.objectives import REGISTRY

__all__ = ["Estimate", "BenchmarkRow", "Verdict", "binomial_estimate", "bootstrap_estimate", "pareto_optimal",
           "collect_rows", "collect_at_cost_rows", "train_cost_seconds", "verdict", "format_table",
           "format_at_cost_table", "format_paired_table", "format_verdict", "paired_difference", "format_report",
           "draw_frontier", "REFERENCE", "COST_FRACTION", "BOOTSTRAP_SEED", "BOOTSTRAP_RESAMPLES"]

#: The method the verdict measures every other against, and the cost share it allows them.
REFERENCE = "ig-sum-norm"
COST_FRACTION = 0.25
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 2000
UNIT_FILE = "unit.json"
STRONG_CSV = "eval_attribution_strong_examples.csv"
CERTIFY_CSV = "eval_certify_examples.csv"


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval: ``low``..``high`` (95 %); ``se`` for a binomial estimate, else None."""

    value: float
    low: float
    high: float
    n: int
    se: float | None = None

    def format(self, scale: float = 1.0, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.value):
            return "—"
        if self.se is not None:
            return f"{self.value * scale:.{digits}f} ± {self.se * scale:.{digits}f}"
        return f"{self.value * scale:.{digits}f} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"


def binomial_estimate(p: float, n: int) -> Estimate:
    """A proportion ``p`` of ``n`` images with its binomial standard error; the interval is ±1.96 se."""
    if n <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    se = math.sqrt(max(p * (1.0 - p), 0.0) / n)
    return Estimate(p, p - 1.96 * se, p + 1.96 * se, n, se)


def bootstrap_estimate(values: Sequence[float], *, seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES,
                       level: float = 0.95) -> Estimate:
    """The mean of ``values`` (one per image; NaN ones left out) and the percentile-bootstrap
    interval at ``level``: ``resamples`` resamples of the images with replacement, drawn from
    ``numpy.random.default_rng(seed)``, the interval the (1 − level)/2 and (1 + level)/2 quantiles
    of their means."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if x.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(x.mean()), float(low), float(high), int(x.size))


def pareto_optimal(costs: Sequence[float | None], scores: Sequence[float | None]) -> list[bool]:
    """Which points are Pareto-optimal for (lower cost, higher score): no other point has cost ≤ and
    score ≥ with one of them strict. A point missing either value is never optimal (and dominates nothing)."""
    known = [c is not None and s is not None and not (math.isnan(c) or math.isnan(s)) for c, s in zip(costs, scores)]
    out = []
    for i, (c, s) in enumerate(zip(costs, scores)):
        if not known[i]:
            out.append(False)
            continue
        dominated = any(known[j] and costs[j] <= c and scores[j] >= s and (costs[j] < c or scores[j] > s)  # type: ignore[operator]
                        for j in range(len(costs)) if j != i)
        out.append(not dominated)
    return out


@dataclass(frozen=True)
class BenchmarkRow:
    """One finished unit: its metrics with intervals and its cost (core-hours; None when not recorded)."""

    method: str
    display: str
    natural_accuracy: Estimate
    adversarial_accuracy: Estimate
    strong_in: Estimate
    strong_in_dropped: Estimate
    strong_co: Estimate
    strong_co_dropped: Estimate
    cosine: Estimate
    lens_recall: Estimate
    certified_in: Estimate
    train_core_hours: float | None
    eval_core_hours: float | None
    seconds_per_step: float | None
    train_steps: int | None
    init_from: str | None
    #: Training wall seconds × threads, in hours (``total_train_core_seconds``): shown beside the
    #: axis, which is CPU time; the two differ when other processes shared the cores.
    train_wall_core_hours: float | None = None
    #: The share of the strong evaluation's images the model classifies correctly (binomial).
    attacked_accuracy: Estimate | None = None
    #: The method's display name without the step count a cost-matched row adds to ``display``.
    method_display: str = ""
    #: Per attacked image (test index → (strong IN, strong CO), failures scored 1): what a paired
    #: comparison of two units on the images both attacked needs.
    strong_per_image: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False, compare=False)


def _read_csv(path: Path) -> list[dict[str, float]]:
    """A per-example CSV's rows as floats (True/False as 1/0; a missing or empty cell as NaN)."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for line in csv.DictReader(fh):
            row = {}
            for key, text in line.items():
                if key is None:
                    continue
                text = (text or "").strip()
                if text in ("True", "False"):
                    row[key] = float(text == "True")
                else:
                    try:
                        row[key] = float(text)
                    except ValueError:
                        row[key] = float("nan")
            rows.append(row)
    return rows


def _column(rows: list[dict[str, float]], key: str) -> list[float]:
    return [r.get(key, float("nan")) for r in rows]


def train_cost_seconds(cost: dict) -> float | None:
    """A unit's training cost on the frontier's axis: the CPU seconds its training used, plus those
    of the run it was fine-tuned from (``unit.json``'s ``cost``; None when not recorded).

    CPU time rather than wall × threads: with one torch thread it is the core's time the training
    really took, and it does not grow while another process holds the core. A unit written before
    the run it starts from had its CPU time recorded falls back to that run's wall × threads."""
    if cost.get("total_train_cpu_seconds") is not None:
        return float(cost["total_train_cpu_seconds"])
    own = cost.get("train_cpu_seconds")
    init = cost.get("init_from_train_cpu_seconds")
    if init is None:
        init = cost.get("init_from_train_core_seconds")
    if own is not None and init is not None:
        return float(own) + float(init)
    total = cost.get("total_train_core_seconds")
    return float(total) if total is not None else None


def _row(folder: Path) -> BenchmarkRow:
    unit = json.loads((folder / UNIT_FILE).read_text())
    method = unit["method"]
    info = next((i for i in REGISTRY.values() if i.slug == method), None)
    pgd_file = folder / "eval_pgd.json"
    pgd = json.loads(pgd_file.read_text()) if pgd_file.is_file() else {}
    n = int(pgd.get("num_examples") or 0)
    n_adv = int(pgd.get("num_adversarial_examples") or n)
    strong_all = _read_csv(folder / STRONG_CSV)
    strong = [r for r in strong_all if r.get("correct") == 1.0]
    kept = [r for r in strong if r.get("label_kept") == 1.0]
    certified = [r for r in _read_csv(folder / CERTIFY_CSV) if r.get("correct") == 1.0]
    cost = unit.get("cost", {})
    train = train_cost_seconds(cost)
    wall = cost.get("total_train_core_seconds")
    evals = [v for v in (cost.get("eval_cpu_seconds") or cost.get("eval_core_seconds") or {}).values()
             if v is not None]
    return BenchmarkRow(
        method=method, display=info.display if info else method,
        natural_accuracy=binomial_estimate(float(pgd.get("natural_accuracy", float("nan"))), n),
        adversarial_accuracy=binomial_estimate(float(pgd.get("adversarial_accuracy", float("nan"))), n_adv),
        strong_in=bootstrap_estimate(_column(strong, "intersection")),
        strong_in_dropped=bootstrap_estimate(_column(kept, "intersection")),
        strong_co=bootstrap_estimate(_column(strong, "kendall")),
        strong_co_dropped=bootstrap_estimate(_column(kept, "kendall")),
        cosine=bootstrap_estimate(_column(strong, "cosine")),
        lens_recall=bootstrap_estimate(_column(strong, "lens_recall")),
        certified_in=bootstrap_estimate(_column(certified, "certified_top_k_intersection")),
        train_core_hours=train / 3600 if train is not None else None,
        eval_core_hours=sum(evals) / 3600 if evals else None,
        seconds_per_step=cost.get("seconds_per_step"), train_steps=cost.get("train_steps"),
        init_from=unit.get("init_from"),
        train_wall_core_hours=wall / 3600 if wall is not None else None,
        attacked_accuracy=binomial_estimate(len(strong) / len(strong_all), len(strong_all)) if strong_all else None,
        strong_per_image={int(r["index"]): (r.get("intersection", float("nan")), r.get("kendall", float("nan")))
                          for r in strong if not math.isnan(r.get("index", float("nan")))},
    )


def collect_rows(folders: Sequence[str | Path]) -> list[BenchmarkRow]:
    """One row per unit folder holding a ``unit.json`` (others are left out), in the given order."""
    return [_row(Path(f)) for f in folders if (Path(f) / UNIT_FILE).is_file()]


def collect_at_cost_rows(folders: Sequence[str | Path]) -> list[BenchmarkRow]:
    """One row per cost-matched unit folder (``pipelines.at_cost``) holding a ``unit.json``; its
    ``method`` and ``display`` name the step count ("lga@2000", "LGA (2000 steps)") so that it
    stands apart from the method's full unit. NA, AA and the certificate are not evaluated there."""
    out = []
    for row in collect_rows(folders):
        steps = row.train_steps
        out.append(replace(row, method=f"{row.method}@{steps}", display=f"{row.display} ({steps} steps)",
                           method_display=row.display))
    return out


def paired_difference(row: BenchmarkRow, reference: BenchmarkRow) -> tuple[Estimate, Estimate] | None:
    """Strong IN and CO of ``row`` minus ``reference``'s on the images both attacked, each with a
    paired percentile-bootstrap interval (the images resampled together, so the spread between
    images, which both units share, cancels); None when they have no image in common."""
    common = sorted(set(row.strong_per_image) & set(reference.strong_per_image))
    if not common:
        return None
    diffs = [[row.strong_per_image[i][k] - reference.strong_per_image[i][k] for i in common] for k in (0, 1)]
    return bootstrap_estimate(diffs[0]), bootstrap_estimate(diffs[1])


def _display(method: str) -> str:
    info = next((i for i in REGISTRY.values() if i.slug == method), None)
    return info.display if info else method


def format_table(rows: Sequence[BenchmarkRow]) -> str:
    """The Markdown table: NA/AA in % ± binomial se; the rest mean [95 % bootstrap interval]."""
    head = ("| method | NA % | AA % | strong IN (failures = 1) | strong IN (failures dropped) | strong CO (failures = 1) "
            "| strong CO (failures dropped) | cosine | LENS recall | certified IN | training core-h |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cost = f"{r.train_core_hours:.3f}" if r.train_core_hours is not None else "not recorded"
        lines.append("| " + " | ".join([
            r.display, r.natural_accuracy.format(100, 2), r.adversarial_accuracy.format(100, 2),
            r.strong_in.format(), r.strong_in_dropped.format(), r.strong_co.format(), r.strong_co_dropped.format(),
            r.cosine.format(), r.lens_recall.format(), r.certified_in.format(), cost]) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """The verdict in numbers.

    Attributes:
        pareto_co, pareto_in: methods Pareto-optimal for (training cost, strong CO) and (cost, strong IN).
        pareto_both: Pareto-optimal for (cost, strong IN, strong CO) together.
        reference: the reference's row, or None when it is not finished (then no match is judged).
        matches: methods with cost ≤ COST_FRACTION × the reference's whose strong IN and CO both
            reach the lower end of the reference's 95 % interval.
        closest: when none matches, the cheap-enough method with the smallest shortfall and its
            shortfalls (IN, CO) below the reference's interval; None when no method is cheap enough.
        pareto_co_with_at_cost, pareto_in_with_at_cost: the first two sets again with the
            cost-matched units counted as points (their ``method`` keys, "lga@1356"); empty when
            there are none.
    """

    pareto_co: tuple[str, ...]
    pareto_in: tuple[str, ...]
    pareto_both: tuple[str, ...]
    reference: BenchmarkRow | None
    matches: tuple[str, ...]
    closest: tuple[str, float, float] | None
    pareto_co_with_at_cost: tuple[str, ...] = ()
    pareto_in_with_at_cost: tuple[str, ...] = ()


def _pareto_3(rows: Sequence[BenchmarkRow]) -> list[bool]:
    pts = [(r.train_core_hours, r.strong_in.value, r.strong_co.value) for r in rows]
    ok = [c is not None and not (math.isnan(a) or math.isnan(b)) for c, a, b in pts]
    out = []
    for i, (c, a, b) in enumerate(pts):
        if not ok[i]:
            out.append(False)
            continue
        out.append(not any(ok[j] and pts[j][0] <= c and pts[j][1] >= a and pts[j][2] >= b and pts[j] != pts[i]
                           for j in range(len(pts)) if j != i))
    return out


def verdict(rows: Sequence[BenchmarkRow], reference: str = REFERENCE, fraction: float = COST_FRACTION, *,
            at_cost: Sequence[BenchmarkRow] = ()) -> Verdict:
    """Pareto sets (over ``rows``, the full units) and whether any method reaches ``reference``'s
    strong IN and CO (each at least the lower end of the reference's interval) at ≤ ``fraction`` of
    its training cost: a full unit that cheap, or a cost-matched unit (``at_cost``) whose recorded
    cost stayed within it."""
    def pareto_sets(points: Sequence[BenchmarkRow]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        costs = [r.train_core_hours for r in points]
        return tuple(tuple(r.method for r, f in zip(points, pareto_optimal(costs, [score(r).value for r in points])) if f)
                     for score in (lambda r: r.strong_co, lambda r: r.strong_in))

    pareto_co, pareto_in = pareto_sets(rows)
    with_at_cost = pareto_sets([*rows, *at_cost]) if at_cost else ((), ())
    both = tuple(r.method for r, f in zip(rows, _pareto_3(rows)) if f)
    ref = next((r for r in rows if r.method == reference), None)
    if ref is None or ref.train_core_hours is None:
        return Verdict(pareto_co, pareto_in, both, ref, (), None, *with_at_cost)
    cheap = [r for r in (*rows, *at_cost) if r.method != reference and r.train_core_hours is not None
             and r.train_core_hours <= fraction * ref.train_core_hours]
    gaps = {r.method: (max(0.0, ref.strong_in.low - r.strong_in.value), max(0.0, ref.strong_co.low - r.strong_co.value))
            for r in cheap if not (math.isnan(r.strong_in.value) or math.isnan(r.strong_co.value))}
    matches = tuple(m for m, (gin, gco) in gaps.items() if gin == 0.0 and gco == 0.0)
    closest = None
    if not matches and gaps:
        best = min(gaps, key=lambda m: max(gaps[m]))
        closest = (best, *gaps[best])
    return Verdict(pareto_co, pareto_in, both, ref, matches, closest, *with_at_cost)


def format_paired_table(rows: Sequence[BenchmarkRow], reference: BenchmarkRow) -> str:
    """Markdown: each row's paired difference from ``reference`` (``paired_difference``); empty when
    no row shares an image with it."""
    lines = []
    for r in rows:
        diff = paired_difference(r, reference) if r.method != reference.method else None
        if diff is not None:
            lines.append(f"| {r.display} | {diff[0].n} | {diff[0].format(digits=4)} | {diff[1].format(digits=4)} |")
    if not lines:
        return ""
    head = f"| method | images | strong IN − {reference.display}'s | strong CO − {reference.display}'s |"
    return "\n".join([head, "|---|---|---|---|", *lines])


def _paired_lines(rows: Sequence[BenchmarkRow], ref: BenchmarkRow) -> list[str]:
    lines = []
    for row in rows:
        diff = paired_difference(row, ref)
        if diff is not None:
            lines.append(f"  - {row.display} minus {ref.display}, paired over the {diff[0].n} images both attacked "
                         f"(mean [95 % bootstrap interval]): strong IN {diff[0].format(digits=4)}, strong CO "
                         f"{diff[1].format(digits=4)}; an interval that holds 0 is no measured difference.")
    return lines


def format_verdict(v: Verdict, rows: Sequence[BenchmarkRow], reference: str = REFERENCE,
                   fraction: float = COST_FRACTION, *, at_cost: Sequence[BenchmarkRow] = ()) -> str:
    """The verdict as Markdown bullet points, numbers included."""
    display = {r.method: r.display for r in (*rows, *at_cost)}
    join = lambda ms: ", ".join(display.get(m, m) for m in ms) or "none"  # noqa: E731
    lines = [f"- Pareto-optimal for (training cost, strong CO): {join(v.pareto_co)}",
             f"- Pareto-optimal for (training cost, strong IN): {join(v.pareto_in)}",
             f"- Pareto-optimal for (training cost, strong IN, strong CO) together: {join(v.pareto_both)}"]
    if at_cost:
        lines.append("- Counting the cost-matched units as points too: Pareto-optimal for (cost, strong CO): "
                     f"{join(v.pareto_co_with_at_cost)}; for (cost, strong IN): {join(v.pareto_in_with_at_cost)}")
    ref = v.reference
    if ref is None or ref.train_core_hours is None:
        lines.append(f"- The {reference} unit is {'not finished' if ref is None else 'without a recorded cost'}: "
                     "no match against it is judged.")
        return "\n".join(lines)
    budget = fraction * ref.train_core_hours
    lines.append(f"- Reference {ref.display}: strong IN {ref.strong_in.format()}, strong CO {ref.strong_co.format()}, "
                 f"{ref.train_core_hours:.3f} training core-h; {fraction:.0%} of it is {budget:.3f} core-h.")
    if v.matches:
        lines.append(f"- Reaches {ref.display}'s strong IN and CO (at least its interval's lower end) at ≤ "
                     f"{fraction:.0%} of its cost: {join(v.matches)}.")
        lines += _paired_lines([r for r in (*rows, *at_cost) if r.method in v.matches], ref)
    elif v.closest is not None:
        method, gin, gco = v.closest
        row = next(r for r in (*rows, *at_cost) if r.method == method)
        lines.append(f"- No method reaches {ref.display}'s strong IN and CO at ≤ {fraction:.0%} of its cost. Closest: "
                     f"{display.get(method, method)} at {row.train_core_hours:.3f} core-h, strong IN "
                     f"{row.strong_in.value:.4f} and CO {row.strong_co.value:.4f} against the interval's lower ends "
                     f"{ref.strong_in.low:.4f} and {ref.strong_co.low:.4f}: short by {gin:.4f} IN and {gco:.4f} CO.")
        lines += _paired_lines([row], ref)
    else:
        lines.append(f"- No finished method costs ≤ {fraction:.0%} of {ref.display}'s training cost.")
    return "\n".join(lines)


def format_at_cost_table(rows: Sequence[BenchmarkRow]) -> str:
    """The cost-matched units' Markdown table: steps, training core-h (CPU time, NATURAL's included),
    the accuracy on the strong evaluation's images (% ± binomial se), strong IN and CO (failures = 1)
    and the cosine and LENS recall, mean [95 % bootstrap interval]."""
    head = ("| method | steps | training core-h | accuracy on the attacked images % | strong IN (failures = 1) "
            "| strong CO (failures = 1) | cosine | LENS recall |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cost = f"{r.train_core_hours:.3f}" if r.train_core_hours is not None else "not recorded"
        accuracy = r.attacked_accuracy.format(100, 1) if r.attacked_accuracy is not None else "—"
        lines.append("| " + " | ".join([r.method_display or r.display, str(r.train_steps), cost, accuracy, r.strong_in.format(),
                                        r.strong_co.format(), r.cosine.format(), r.lens_recall.format()]) + " |")
    return "\n".join(lines)


def format_report(rows: Sequence[BenchmarkRow], dataset: str, *, notes: Sequence[str] = (),
                  at_cost: Sequence[BenchmarkRow] = ()) -> str:
    """The dataset's report (Markdown): the table, the cost column's meaning, the cost-matched units'
    table when there are any, the verdict, notes."""
    v = verdict(rows, at_cost=at_cost)
    parts = [f"# robustattr benchmark — {dataset}", "",
             f"{len(rows)} unit(s) finished. NA/AA: % ± binomial standard error; the other columns: mean over the "
             f"attacked (correctly classified) images [95 % percentile-bootstrap interval, {BOOTSTRAP_RESAMPLES} "
             f"resamples, seed {BOOTSTRAP_SEED}]. Training core-h: the CPU time the training phase used (one "
             "torch thread: the core's time), plus that of the NATURAL run a fine-tuned unit starts from; the "
             "frontier's x axis. Wall time × threads, which also counts time other processes held the cores, "
             "is under Cost.", "",
             format_table(rows), "", "## Cost", ""]
    for r in rows:
        step = f"{r.seconds_per_step:.3f} s/step" if r.seconds_per_step is not None else "step cost not recorded"
        evals = f"{r.eval_core_hours:.2f}" if r.eval_core_hours is not None else "?"
        start = f", fine-tuned from {r.init_from}" if r.init_from else ""
        wall = f"{r.train_wall_core_hours:.3f}" if r.train_wall_core_hours is not None else "?"
        lines = (f"- {r.display}: {r.train_steps} steps at {step}{start}; training wall × threads {wall} "
                 f"core-h; evaluation {evals} core-h")
        parts.append(lines)
    if at_cost:
        parts += ["", f"## At {COST_FRACTION:.0%} of {_display(REFERENCE)}'s training cost", "",
                  f"Each method's recipe unchanged but for its step count: as many steps as fit {COST_FRACTION:.0%} of "
                  f"{_display(REFERENCE)}'s training cost (CPU time, less the NATURAL run it starts from and a 5 % "
                  "margin), at the step cost its full unit measured; the same strong evaluation on the same images "
                  "(`robustattr benchmark DATASET --at-cost`; no NA/AA or certificate).", "",
                  format_at_cost_table(at_cost)]
    paired = format_paired_table([*rows, *at_cost], v.reference) if v.reference is not None else ""
    if paired:
        parts += ["", f"## Against {v.reference.display}, image by image", "",
                  f"Each unit's strong IN and CO minus {v.reference.display}'s on the images both attacked (the same "
                  "test images, so the spread between images cancels): mean [95 % paired bootstrap interval]. An "
                  "interval that holds 0 is no measured difference; one that does not is a real one, even when "
                  "the two units' own intervals overlap.", "", paired]
    parts += ["", "## Verdict", "", format_verdict(v, rows, at_cost=at_cost), ""]
    if notes:
        parts += ["## Units and figures", "", *notes, ""]
    return "\n".join(parts)


def draw_frontier(rows: Sequence[BenchmarkRow], out: str | Path, *, title: str = "",
                  at_cost: Sequence[BenchmarkRow] = ()) -> Path:
    """Two panels: strong CO and strong IN (with their 95 % intervals) against training core-hours
    (log scale); the Pareto-optimal methods filled and joined by their frontier; the cost-matched
    units (``at_cost``) as grey squares, outside the Pareto sets. Rows without a recorded cost are
    left out. Written atomically as PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    drawn = [r for r in rows if r.train_core_hours is not None and r.train_core_hours > 0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, label, get in ((axes[0], "strong CO (Kendall τ)", lambda r: r.strong_co),
                           (axes[1], "strong IN (top-k intersection)", lambda r: r.strong_in)):
        costs = [r.train_core_hours for r in drawn]
        est = [get(r) for r in drawn]
        flags = pareto_optimal(costs, [e.value for e in est])
        for r, e, best in zip(drawn, est, flags):
            if math.isnan(e.value):
                continue
            ax.errorbar(r.train_core_hours, e.value, yerr=[[e.value - e.low], [e.high - e.value]], fmt="o",
                        color="tab:red" if best else "tab:blue", mfc="tab:red" if best else "white", capsize=3)
            ax.annotate(r.display, (r.train_core_hours, e.value), textcoords="offset points", xytext=(5, 4), fontsize=8)
        for r in at_cost:
            e = get(r)
            if r.train_core_hours is None or r.train_core_hours <= 0 or math.isnan(e.value):
                continue
            ax.errorbar(r.train_core_hours, e.value, yerr=[[e.value - e.low], [e.high - e.value]], fmt="s",
                        color="tab:gray", mfc="white", capsize=3)
            ax.annotate(r.display, (r.train_core_hours, e.value), textcoords="offset points", xytext=(5, -10),
                        fontsize=7, color="tab:gray")
        front = sorted((c, e.value) for c, e, f in zip(costs, est, flags) if f)
        if len(front) > 1:
            ax.step([c for c, _ in front], [s for _, s in front], where="post", color="tab:red", lw=1, alpha=0.6)
        ax.set_xscale("log")
        # Minor tick labels on a log axis spanning under two decades overprint each other.
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training cost (core-hours, log scale)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    legend = "filled red: Pareto-optimal"
    if at_cost:
        legend += f"; grey squares: at {COST_FRACTION:.0%} of {_display(REFERENCE)}'s cost"
    fig.suptitle(f"cost–robustness frontier{' — ' + title if title else ''} ({legend})")
    fig.tight_layout()
    with atomic_file(out, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
    return out

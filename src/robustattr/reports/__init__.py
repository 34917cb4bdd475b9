"""Reports from result files: the paper's Table 1 layout and the figures people look at."""

from robustattr.reports.figures import Panel, draw_attack_panels, draw_training_curves
from robustattr.reports.paper import METHOD_NAMES, PAPER_RESULTS, paper_result
from robustattr.reports.shape import Criterion, format_criteria, judge_aims, judge_shape
from robustattr.reports.tables import RunRow, collect_rows, format_rows, report

__all__ = [
    "Criterion",
    "METHOD_NAMES",
    "PAPER_RESULTS",
    "Panel",
    "RunRow",
    "collect_rows",
    "draw_attack_panels",
    "draw_training_curves",
    "format_criteria",
    "format_rows",
    "judge_aims",
    "judge_shape",
    "paper_result",
    "report",
]

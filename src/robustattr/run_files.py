"""The run directory's own files as every layer reads them back: ``config.json`` and ``metrics.jsonl``.

Training writes both; resume, the evaluations, ``report``, ``figure --curves`` and ``repro`` read
them, always through these functions, so a damaged file is the same one-line error wherever it is
met (``robustattr.json_files``). Imports only ``json_files``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustattr.json_files import INT, STR, nullable, read_json, read_json_lines, record

__all__ = ["ABSENT_RESUME_KEYS", "RUN_CONFIG", "METRICS_LINE", "read_run_config", "read_metrics"]

#: What a key absent from an older run's config means (it was written before the key existed).
ABSENT_RESUME_KEYS = {"epsilon_ramp_steps": 0, "learning_rate_schedule": None}

#: What readers of a run's ``config.json`` rely on (the full schema is ``robustattr.config``'s).
RUN_CONFIG = record(
    {"dataset": STR, "training_objective": STR},
    optional={"model": STR, "init_from": nullable(STR), "m": INT, "num_steps": INT, "max_num_training_steps": INT},
)
#: One line of ``metrics.jsonl``: the step and whatever was logged with it.
METRICS_LINE = record({"step": INT})


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/config.json`` as training wrote it, checked against :data:`RUN_CONFIG`."""
    return read_json(Path(run_dir) / "config.json", RUN_CONFIG, kind="run config",
                     fix="restore the config.json this run was trained with, or retrain it (--overwrite)")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a last line cut short by a kill is dropped."""
    return read_json_lines(path, METRICS_LINE, kind="metrics log",
                           fix="delete the damaged line (or the file: only the training curves use it)")

"""Result files of the evaluation drivers: atomic JSON summaries and the resumable per-example CSV.

The per-example CSV is appended one batch at a time (flush + fsync), so a run killed midway loses
at most the batch in flight. A sidecar ``<csv stem>.settings.json`` records the attack settings and
their digest; rows are reused only by a run with the same digest. A CSV whose settings differ (or
are unknown) is moved aside, never deleted: evaluations cost hours and the user may want it back.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustattr.files import atomic_write_json, naming_write_errors, open_regular
from robustattr.errors import UserInputError
from robustattr.json_files import INT, NUMBER, STR, Shape, at_least_int, nullable, read_json, record

__all__ = ["write_json_atomic", "settings_digest", "ExampleLog", "EXAMPLE_FIELDS", "read_result",
           "PGD_RESULT", "ATTRIBUTION_RESULT"]

logger = logging.getLogger(__name__)

EXAMPLE_FIELDS = ("index", "label", "correct", "intersection", "spearman", "kendall", "found", "flat_rule_steps")
# Columns read back as integers, and as text (the strong evaluation's member names); the rest are floats.
_INT_FIELDS = frozenset({"index", "label", "correct", "found", "flat_rule_steps", "label_kept"})
_BOOL_FIELDS = frozenset({"correct", "found", "label_kept"})


def _is_text(name: str) -> bool:
    return name.startswith("worst_") and name.endswith("_member")

_FRACTION = nullable(NUMBER)  # null where a mean ran over no example
_COUNT = nullable(at_least_int(0))
# Settings a result records (at its top level or, in older files, under "settings").
_SETTINGS = {"checkpoint_step": nullable(INT), "epsilon": nullable(NUMBER), "num_steps": nullable(INT),
             "step_size": nullable(NUMBER), "attribution_attack_method": nullable(STR),
             "attribution_attack_steps": nullable(INT), "attribution_attack_times": nullable(INT),
             "num_IG_steps": nullable(INT)}
_COMMON = {**_SETTINGS, "dataset": STR, "settings": record({}, optional=_SETTINGS)}
#: ``eval_pgd.json`` as its readers (report, repro) use it.
PGD_RESULT = record(
    {"natural_accuracy": _FRACTION, "adversarial_accuracy": _FRACTION, "num_examples": at_least_int(0)},
    optional={**_COMMON, "num_adversarial_examples": _COUNT},
)
#: ``eval_attribution.json`` (and the files of the same layout) as its readers use it.
ATTRIBUTION_RESULT = record(
    {"top_k_intersection": _FRACTION, "kendall": _FRACTION, "num_examples": at_least_int(0)},
    optional={**_COMMON, "spearman": _FRACTION, "num_attacked": _COUNT, "num_not_found": _COUNT,
              "num_no_label_keeping": _COUNT, "top_k_intersection_dropped": _FRACTION,
              "kendall_dropped": _FRACTION},
)


def read_result(path: Path, shape: Shape = record({})) -> dict[str, Any]:
    """An evaluation's result file, checked against ``shape`` (:data:`PGD_RESULT`, ...)."""
    return read_json(path, shape, kind="result file", fix="delete it and run the evaluation again")


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null (e.g. a mean over zero attacked examples)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(path: Path, obj: Mapping[str, Any]) -> None:
    """Write ``obj`` as indented JSON to ``path`` via a temp file, fsync and rename."""
    atomic_write_json(path, _json_safe(obj))


def settings_digest(settings: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``settings``."""
    text = json.dumps(_json_safe(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ExampleLog:
    """Per-example rows (``fields``, by default ``EXAMPLE_FIELDS``) with resume support.

    ``found`` is 0 where the attack found no label-kept iterate that lowered its criterion (the
    walk never moved, or every step flipped the label): that example reports (1, 1, 1).
    ``flat_rule_steps`` counts the iterations that took the flat-objective random step.

    ``open()`` returns the rows already computed under the same settings (index → row dict) and
    prepares the file for appending; ``append(rows)`` writes one batch durably.
    """

    def __init__(self, path: Path, settings: Mapping[str, Any], fields: tuple[str, ...] = EXAMPLE_FIELDS) -> None:
        self.path = Path(path)
        self.fields = tuple(fields)
        self.sidecar = self.path.with_suffix(".settings.json")
        self.settings = dict(settings)
        self.digest = settings_digest(settings)
        self.rows: dict[int, dict[str, float | int]] = {}

    def open(self) -> dict[int, dict[str, float | int]]:
        for path in (self.path, self.sidecar):
            if path.is_symlink() or path.exists() and not path.is_file():
                raise UserInputError(f"{path} is a symbolic link or not a regular file; robustattr writes only "
                                     "regular files in a run directory, never through a link: remove it")
        # Same settings but other columns (a file from before a column was added): start over, since
        # rows appended under the old header could never be read back.
        if self.path.exists() and self._stored_digest() == self.digest and self._header() == ",".join(self.fields):
            self._truncate_partial_line()
            self.rows = self.read_rows(self.path, self.fields)
            logger.info("resuming %s: %d examples already done", self.path, len(self.rows))
            return dict(self.rows)
        if self.path.exists() or self.sidecar.exists():
            self._move_aside()
        write_json_atomic(self.sidecar, {"settings": self.settings, "digest": self.digest})
        self._write_header()
        self.rows = {}
        return {}

    def _header(self) -> str:
        """The CSV's first line, without its newline ("" for an empty or unreadable file)."""
        try:
            with open(self.path, "rb") as fh:
                return fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        except OSError:
            return ""

    def _write_header(self) -> None:
        with naming_write_errors(self.path), open_regular(self.path, "w") as fh:
            fh.write(",".join(self.fields) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, rows: Iterable[tuple]) -> None:
        """Append rows (tuples in ``fields`` order), then flush and fsync."""
        lines = []
        for row in rows:
            record = dict(zip(self.fields, row, strict=True))
            for key in _BOOL_FIELDS & record.keys():
                record[key] = int(bool(record[key]))
            self.rows[int(record["index"])] = record
            # repr keeps every bit of a float, so means recomputed from the file are exact.
            lines.append(",".join(repr(v) if isinstance(v, float) else str(v) for v in record.values()))
        if not lines:
            return
        with naming_write_errors(self.path), open_regular(self.path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _stored_digest(self) -> str | None:
        """The settings digest the CSV was computed under; None when unknown (damaged, missing)."""
        try:
            return read_json(self.sidecar, record({"digest": STR}), kind="settings file")["digest"]
        except UserInputError:
            return None

    def _move_aside(self) -> None:
        stored = self._stored_digest()
        tag = stored[:12] if stored else "unknown"
        for n in range(1000):
            stem = f"{self.path.stem}.stale-{tag}" + (f"-{n}" if n else "")
            dest = self.path.with_name(stem + self.path.suffix)
            if not dest.exists():
                break
        if self.path.exists():
            os.replace(self.path, dest)
        if self.sidecar.exists():
            os.replace(self.sidecar, dest.with_suffix(".settings.json"))
        logger.warning(
            "%s was computed with other attack settings; moved it to %s and starting afresh",
            self.path.name, dest.name,
        )

    def _truncate_partial_line(self) -> None:
        """Drop a last line cut short by a crash mid-write (everything after the last newline)."""
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        if b"\n" not in data:  # not even the header survived
            self._write_header()
            return
        with naming_write_errors(self.path), open_regular(self.path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)

    @staticmethod
    def read_rows(path: Path, fields: tuple[str, ...] = EXAMPLE_FIELDS) -> dict[int, dict[str, float | int | str]]:
        """The rows of a per-example CSV by index; a damaged row is skipped (and so recomputed).

        Raises:
            UserInputError: the file is not CSV at all (a field over the csv module's limit, ...).
        """
        rows: dict[int, dict[str, float | int]] = {}
        # Undecodable bytes become U+FFFD: that row fails to parse below and is recomputed.
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        try:
            records = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise UserInputError(f"per-example file {path} is corrupt ({exc}); delete it (and "
                                 f"{Path(path).with_suffix('.settings.json').name}) to compute the examples again") from None
        for line in records:
            try:
                row = {k: _parse(k, line[k]) for k in fields}
            except (KeyError, TypeError, ValueError):
                continue  # a damaged row is recomputed; later rows for an index win
            rows[row["index"]] = row
        return rows


def _parse(field: str, text: str | None) -> float | int | str:
    if text is None:
        raise ValueError(f"{field} missing")
    if _is_text(field):
        return text
    return int(text) if field in _INT_FIELDS else float(text)

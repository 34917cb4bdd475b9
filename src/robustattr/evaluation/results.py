"""Result files of the evaluation drivers: atomic JSON summaries and the resumable per-example CSV.

The per-example CSV is appended one batch at a time (flush + fsync), so a run killed midway loses
at most the batch in flight. A sidecar ``<csv stem>.settings.json`` records the attack settings and
their digest; rows are reused only by a run with the same digest. A CSV whose settings differ (or
are unknown) is moved aside, never deleted: evaluations cost hours and the user may want it back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robustattr.data._io import atomic_write_json

__all__ = ["write_json_atomic", "settings_digest", "ExampleLog", "EXAMPLE_FIELDS"]

logger = logging.getLogger(__name__)

EXAMPLE_FIELDS = ("index", "label", "correct", "intersection", "spearman", "kendall", "found", "flat_rule_steps")
# Columns read back as integers, and as text (the strong evaluation's member names); the rest are floats.
_INT_FIELDS = frozenset({"index", "label", "correct", "found", "flat_rule_steps"})
_BOOL_FIELDS = frozenset({"correct", "found"})


def _is_text(name: str) -> bool:
    return name.startswith("worst_") and name.endswith("_member")


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
        if self.path.exists() and self._stored_digest() == self.digest:
            self._truncate_partial_line()
            self.rows = self._read()
            logger.info("resuming %s: %d examples already done", self.path, len(self.rows))
            return dict(self.rows)
        if self.path.exists() or self.sidecar.exists():
            self._move_aside()
        write_json_atomic(self.sidecar, {"settings": self.settings, "digest": self.digest})
        self._write_header()
        self.rows = {}
        return {}

    def _write_header(self) -> None:
        with open(self.path, "w", encoding="utf-8", newline="") as fh:
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
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _stored_digest(self) -> str | None:
        try:
            return json.loads(self.sidecar.read_text(encoding="utf-8"))["digest"]
        except (OSError, ValueError, KeyError, TypeError):
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
        with open(self.path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)

    def _read(self) -> dict[int, dict[str, float | int]]:
        rows: dict[int, dict[str, float | int]] = {}
        with open(self.path, encoding="utf-8", newline="") as fh:
            for record in csv.DictReader(fh):
                try:
                    row = {k: _parse(k, record[k]) for k in self.fields}
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

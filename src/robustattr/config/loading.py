"""Reading configs: JSON files (and run directories), ``--set`` overrides and layers, validated into a
:class:`~robustattr.config.schema.Config`; and the key listing of ``config check --help``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robustattr.errors import UserInputError, did_you_mean
from robustattr.json_files import Shape, parse_json_text, read_json
from robustattr.training.objectives.registry import OBJECTIVES, all_objective_keys, objective_info

from robustattr.config.checks import _Given, _Resolver
from robustattr.config.schema import _ATTR, _SPECS, Config

#: The original code's other spellings (spec §10.5), accepted on input only.
ALIASES = {"k": "num_steps", "a": "step_size", "tf_random_seed": "random_seed",
           "numpy_random_seed": "np_random_seed"}
_HELP = "run `robustattr config check --help` for every key"


def describe_keys() -> str:
    """One line per key with its doc (for ``--help`` epilogs and docs), then the aliases."""
    lines = [f"  {key:<29} {spec.doc}" for key, spec in _SPECS.items()]
    for info in OBJECTIVES.values():
        lines += [f"  {key:<29} {info.name} only: {spec.doc}" for key, spec in info.keys.items()]
    aliases = ", ".join(f"{a} -> {k}" for a, k in ALIASES.items())
    return "config keys:\n" + "\n".join(lines) + f"\naliases: {aliases}; \"_comment\" keys are ignored"


# --- loading -------------------------------------------------------------------------------------
def _canonical(raw: Mapping[str, Any], origin: str) -> dict[str, _Given]:
    out: dict[str, _Given] = {}
    for spelled, value in raw.items():
        if spelled.startswith("_comment"):
            continue
        key = ALIASES.get(spelled, spelled)
        if key not in _SPECS and key not in all_objective_keys():
            hint = did_you_mean(spelled, [*_SPECS, *ALIASES, *all_objective_keys()])
            raise UserInputError(f"unknown config key '{spelled}' (from {origin}){hint}; {_HELP}")
        if key in out and out[key].value != value:
            raise UserInputError(
                f"config keys '{out[key].spelled}' and '{spelled}' (from {origin}) both set '{key}', "
                f"to {json.dumps(out[key].value, default=str)} and {json.dumps(value, default=str)}; keep one")
        out[key] = _Given(value, origin, spelled)
    return out


def build(layers: Sequence[tuple[Mapping[str, Any], str]]) -> Config:
    given: dict[str, _Given] = {}
    for raw, origin in layers:
        given.update(_canonical(raw, origin))
    r = _Resolver(given, _SPECS)
    values = {attr: r[key] for key, attr in _ATTR.items()}
    info = objective_info(r["training_objective"])
    for key, owners in all_objective_keys().items():
        if key in given and key not in info.keys:
            g = given[key]
            raise UserInputError(
                f"config key '{g.spelled}' (from {g.origin}) belongs to training_objective "
                f"{' / '.join(owners)}, not {info.name} ({info.display}): remove it or change training_objective")
    return Config(**values, objective_settings=tuple((key, r[key]) for key in info.keys))


_CONFIG_OBJECT = Shape('a JSON object {"key": value, ...}', lambda v: isinstance(v, dict))


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` as configs are read: BOM allowed; a repeated key (other than
    ``_comment*``), a missing, non-regular (FIFO) or malformed file, and absurd nesting or integers
    are one-line ``UserInputError``s naming the file (``robustattr.json_files``)."""
    return read_json(path, _CONFIG_OBJECT, kind="config file", corrupt=False, bom=True, unique_keys=True)


def _parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in [items] if isinstance(items, str) else items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--set '{item}' is malformed: write KEY=VALUE, e.g. --set epsilon=0.3")
        try:
            out[key.strip()] = parse_json_text(text)
        except ValueError:  # not JSON (or absurdly nested or long): the text itself
            out[key.strip()] = text.strip()
    return out


def load_config(path: str | Path | None, overrides: Iterable[str] = (), *,
                base: Mapping[str, Any] | None = None,
                layers: Sequence[tuple[Mapping[str, Any], str]] = ()) -> Config:
    """Read a JSON config, apply "KEY=VALUE" ``overrides``, fill the defaults, validate.

    Args:
        path: the JSON file, or None for ``base`` and ``overrides`` only.
        overrides: "KEY=VALUE" strings (``--set``); VALUE is parsed as JSON, else taken as a string.
        base: values under the file (lowest precedence).
        layers: ``(values, origin)`` pairs above the file and below ``overrides``, in order; an
            error in one names its origin (e.g. a section of a reproduction recipe).
    Raises:
        UserInputError: unreadable file, bad JSON, unknown key, bad value; the message names it.
    """
    stack: list[tuple[Mapping[str, Any], str]] = [] if base is None else [(base, "base")]
    if path is not None:
        stack.append((read_json_file(Path(path)), str(path)))
    return build([*stack, *layers, (_parse_overrides(overrides), "--set")])


def load_run_or_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """A run directory (its ``config.json``, ``model_dir`` set to the directory) or a config file."""
    p = Path(path)
    if not p.is_dir():
        if not p.exists():
            raise UserInputError(f"{p} does not exist: give a config file or a run directory")
        return load_config(p, overrides)
    file = p / "config.json"
    if not file.is_file():
        raise UserInputError(f"run directory {p} has no config.json: train into it first or give a config file")
    return build([(read_json_file(file), str(file)), ({"model_dir": str(p)}, f"run directory {p}"),
                   (_parse_overrides(overrides), "--set")])

"""The registry of training objectives: one entry per objective, carrying everything others derive.

An objective module defines its function ``(model, x, y, params) -> LossOut`` and registers it
with :func:`register_objective`; the package imports every module in its folder, so a new
objective is one new module (``docs/extending.md``). Every other list of objectives — the config's
choices and aliases, the keys that define a run's weights, the report's method names, the
reproduction's and the benchmark's units, the presets' file names — is read from here.

    >>> from robustattr.training.objectives import objective_info
    >>> info = objective_info("IG-NORM")          # any spelling: ar, ig-norm, ig_norm, IGNorm, IG-NORM
    >>> info.name, info.slug, info.display, info.uses_inner_attack
    ('ar', 'ig-norm', 'IG-NORM', True)

Names: ``name`` is the config's ``training_objective`` value (the original's script names for the
paper's four — nat, adv, ar, adv_ar — so its 20 configs and every saved ``config.json`` keep their
meaning; the slug for later objectives). ``slug`` names presets (``configs/<dataset>/<slug>.json``)
and reproduction/benchmark units. ``display`` is the paper's name, used in tables.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from robustattr.errors import UserInputError, did_you_mean
from robustattr.keys import KeySpec

__all__ = ["ObjectiveInfo", "OBJECTIVES", "register_objective", "objective_info", "objective_names",
           "objective_keys", "all_objective_keys", "resume_keys", "objective_key", "hyperparameters"]


@dataclass(frozen=True)
class ObjectiveInfo:
    """One training objective and its metadata.

    Attributes:
        name: the config's ``training_objective`` value and the CLI's name.
        slug: canonical lower-case name with hyphens: preset and unit file names.
        display: the method's name in papers and tables (``IG-NORM``).
        function: ``(model, x, y, params: ObjectiveParams) -> LossOut``.
        uses_inner_attack: it runs an inner maximisation (PGD) every step, so it draws a random
            start from the global RNG (the loop shares that draw among data-parallel ranks).
        draws_noise: it draws one U(−ε, ε) tensor shaped like the batch every step whatever
            ``random_start`` says (its own noise, e.g. LGA's z), from ``params.start_noise`` or the
            global RNG, so the data-parallel loop draws it for the global batch and hands each rank
            its slice, as for a PGD start.
        params: the frozen dataclass of the objective's own hyper-parameters, or None. Each field
            made with :func:`objective_key` is a config key of this objective only; the loop builds
            it from the config and hands it to the function as ``params.hyper``.
        loss_class: the name of its class in ``robustattr.losses`` ("" where there is none).
        aliases: other spellings accepted for ``training_objective`` (matching ignores case, and
            ``-``/``_``/spaces); the slug, display name and loss class are always accepted.
        reference: the paper, one line.
        paper_steps: training steps of the source's MNIST/Fashion-MNIST setting (the default of
            ``max_num_training_steps`` there).
        order: position in listings and tables (the paper's four 0-3, then later work).
        large_dataset_reduction: the loss reduction ``loss_reduction: original`` means on GTSRB
            and Flower-17 (the original's inconsistency, spec §10.2); MNIST-like data always sum.
    """

    name: str
    slug: str
    display: str
    function: Callable[..., Any]
    uses_inner_attack: bool
    params: type | None = None
    draws_noise: bool = False
    loss_class: str = ""
    aliases: tuple[str, ...] = ()
    reference: str = ""
    paper_steps: int = 100_000
    large_dataset_reduction: str = "mean"
    order: int = 100

    @property
    def keys(self) -> dict[str, KeySpec]:
        """The config keys this objective adds (its ``params`` fields made by :func:`objective_key`)."""
        return _keys_of(self.params)

    def shares_start_noise(self, random_start: bool) -> bool:
        """Does a step draw a U(−ε, ε) tensor for the whole batch (a PGD start, or its own noise)?"""
        return self.draws_noise or (self.uses_inner_attack and random_start)

    def spellings(self) -> set[str]:
        return {_fold(s) for s in (self.name, self.slug, self.display, self.loss_class, *self.aliases) if s}


#: name → info, in registration order (the paper's four first, then later work by year).
OBJECTIVES: dict[str, ObjectiveInfo] = {}
_SPELLINGS: dict[str, str] = {}


def _fold(text: str) -> str:
    return re.sub(r"[-_\s]", "", text).lower()


def register_objective(info: ObjectiveInfo) -> ObjectiveInfo:
    """Add ``info`` to :data:`OBJECTIVES`; a name or spelling already taken by another is an error."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", info.name) or not re.fullmatch(r"[a-z][a-z0-9-]*", info.slug):
        raise ValueError(f"objective name {info.name!r} / slug {info.slug!r}: lower-case letters, digits, - and _")
    if info.params is not None and not dataclasses.is_dataclass(info.params):
        raise TypeError(f"objective {info.name}: params must be a dataclass, got {info.params!r}")
    for spelling in info.spellings():
        owner = _SPELLINGS.get(spelling)
        if owner is not None and owner != info.name:
            raise ValueError(f"objective {info.name}: the spelling {spelling!r} already names {owner}")
    OBJECTIVES[info.name] = info
    ranked = sorted(OBJECTIVES.values(), key=lambda i: i.order)  # stable: ties keep registration order
    OBJECTIVES.clear()
    OBJECTIVES.update((i.name, i) for i in ranked)
    _SPELLINGS.update(dict.fromkeys(info.spellings(), info.name))
    return info


def objective_names() -> tuple[str, ...]:
    """The ``training_objective`` values, in registration order."""
    return tuple(OBJECTIVES)


def objective_info(spelling: str) -> ObjectiveInfo:
    """The objective any accepted spelling names; unknown ones raise UserInputError listing the choices."""
    name = _SPELLINGS.get(_fold(str(spelling)))
    if name is None:
        raise UserInputError(
            f"training_objective={spelling!r} is unknown{did_you_mean(str(spelling), OBJECTIVES)}; choose from "
            + ", ".join(f"{i.name} ({i.display})" if i.display.lower() != i.name else i.name
                        for i in OBJECTIVES.values()))
    return OBJECTIVES[name]


def objective_keys(spelling: str) -> dict[str, KeySpec]:
    """The config keys of one objective (empty for the paper's four, whose keys every config has)."""
    return objective_info(spelling).keys


def all_objective_keys() -> dict[str, tuple[str, ...]]:
    """Every objective-specific config key → the objectives that declare it."""
    out: dict[str, list[str]] = {}
    for info in OBJECTIVES.values():
        for key in info.keys:
            out.setdefault(key, []).append(info.name)
    return {k: tuple(v) for k, v in out.items()}


#: Config keys that define the weights of every run (budgets, logging cadence, paths and
#: evaluation-only keys may change between a run and its resumption).
_COMMON_RESUME_KEYS = ("dataset", "model", "training_objective", "optimizer", "learning_rate", "step_size_schedule",
                       "weight_decay", "momentum", "training_batch_size", "random_seed", "np_random_seed", "m",
                       "lambda", "approx_factor", "epsilon", "num_steps", "step_size", "random_start", "loss_func",
                       "loss_reduction", "init_from", "epsilon_ramp_steps", "learning_rate_schedule")


def resume_keys(spelling: str | None = None) -> tuple[str, ...]:
    """The keys a resumed run must agree on: the common ones plus ``spelling``'s own keys (all
    objectives' keys when None or unknown, so a saved config is compared on whatever it holds)."""
    if spelling is not None and _fold(str(spelling)) in _SPELLINGS:
        extra = tuple(objective_keys(spelling))
    else:
        extra = tuple(all_objective_keys())
    return _COMMON_RESUME_KEYS + tuple(k for k in extra if k not in _COMMON_RESUME_KEYS)


def objective_key(default: Any, doc: str, kind: Callable[[Any], Any], check: Any = None, *,
                  key: str = "") -> Any:
    """A dataclass field of an objective's ``params`` that is also a config key of that objective.

    ``default`` is the MNIST preset's value; ``kind`` and ``check`` are ``robustattr.keys`` type and
    range checks (``keys.FLOAT``, ``keys.NONNEG`` ...); ``key`` the JSON key where it differs from
    the field name.
    """
    return field(default=default, metadata={"key": KeySpec(kind, default, doc, check, key=key)})


def _keys_of(params: type | None) -> dict[str, KeySpec]:
    if params is None:
        return {}
    return {f.metadata["key"].key or f.name: f.metadata["key"]
            for f in dataclasses.fields(params) if "key" in f.metadata}


def hyperparameters(info: ObjectiveInfo, values: Mapping[str, Any]) -> Any:
    """``info.params`` built from config ``values`` (JSON keys), or None when it has no params."""
    if info.params is None:
        return None
    kwargs = {}
    for f in dataclasses.fields(info.params):
        spec = f.metadata.get("key")
        if spec is not None and (spec.key or f.name) in values:
            kwargs[f.name] = values[spec.key or f.name]
    return info.params(**kwargs)

"""The config's checks and key-dependent defaults: the resolver that fills a config lazily, the kinds
and ranges of its keys (beyond ``robustattr.keys``' common ones), and defaults that read other keys
(the dataset's, from its catalog entry; the objective's, from its registry entry)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any, NoReturn

from robustattr.data.catalog import DATASETS, DatasetInfo
from robustattr.errors import UserInputError, did_you_mean
from robustattr.attacks.attribution_objectives import MEASURES
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.pgd import PGD_LOSSES
from robustattr.attribution import SALIENCY_KINDS
from robustattr.training.objectives.registry import OBJECTIVES, objective_info, objective_names
from robustattr.keys import (
    BOOL, FLOAT, INT, NONNEG, ONE, POS, SEED, STR, UNIT, BadValue, Check, Given, KeySpec, Kind, choice, is_int, kind,
    rule,
)


_Bad = BadValue
_Given = Given
_Spec = KeySpec


class _Resolver:
    """Resolves keys lazily, so a default or a check may read other keys (dataset, m, ...)."""

    def __init__(self, given: dict[str, _Given], specs: dict[str, KeySpec]) -> None:
        self.given = given
        self.specs = specs  # the common keys' (``schema``); an objective's own come from its registry entry
        self.values: dict[str, Any] = {}
        self._info: DatasetInfo | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            spec = self.specs.get(key) or objective_info(self["training_objective"]).keys[key]
            self.values[key] = spec.resolve(key, self)
        return self.values[key]

    @property
    def info(self) -> DatasetInfo:
        if self._info is None:
            name = self["dataset"]
            if name in DATASETS:
                self._info = DATASETS[name]
            else:  # a user's npz:/folder: data, prepared (or found in the cache) to learn its facts
                from robustattr.data.api import dataset_info

                self._info = dataset_info(name, root=self["data_root"], pixel_range=self["pixel_range"],
                                          image_size=self["image_size"])
        return self._info

    @property
    def user_data(self) -> bool:
        """The dataset is a user's ``npz:PATH`` / ``folder:PATH`` (defaults then follow MNIST's)."""
        return self["dataset"] not in DATASETS


def _key(kind: Kind, default: Any, doc: str, check: Check | None = None, *,
         nullable: bool = False, key: str = "") -> Any:
    return field(metadata={"spec": _Spec(kind, default, doc, check, nullable, key)})


# --- type checks (robustattr.keys has the common ones) -------------------------------------------
_is_int, _kind, _choice, _rule = is_int, kind, choice, rule
_INT, _FLOAT, _BOOL, _STR = INT, FLOAT, BOOL, STR
_DEVICE = _kind(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
                "must be auto, cpu, cuda or cuda:N")
_USER_PREFIXES = ("npz:", "folder:")
_DATASET = _kind(lambda v: isinstance(v, str) and (v in DATASETS or v.startswith(_USER_PREFIXES) and ":" in v[:-1]),
                 f"must be one of {', '.join(DATASETS)}, or npz:PATH / folder:PATH for your own data")
_BUILTIN_MODELS = ("mnist_cnn", "gtsrb_resnet", "flower_resnet")
_MODEL = _kind(lambda v: isinstance(v, str) and (v in _BUILTIN_MODELS or re.fullmatch(
    r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", v) is not None),  # models.is_factory
    f"must be one of {', '.join(_BUILTIN_MODELS)}, or \"package.module:factory\" for your own model")
_RANGE = _kind(lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(
    _is_int(x) or isinstance(x, float) and math.isfinite(x) for x in v) and v[0] < v[1],
    "must be [low, high] with low < high, e.g. [0, 1]", lambda v: (float(v[0]), float(v[1])))
_SIZE = _kind(lambda v: _is_int(v) and v >= 1 or isinstance(v, list | tuple) and len(v) == 2 and all(
    _is_int(x) and x >= 1 for x in v), "must be [H, W] (or one integer for square images), positive",
    lambda v: (v, v) if _is_int(v) else (v[0], v[1]))
_BOX = _kind(lambda v: isinstance(v, list | tuple) and len(v) == 4 and all(map(_is_int, v)),
             "must be a box [row0, col0, row1, col1] of 4 integers (end exclusive)", tuple)


def _schedule(v: Any) -> tuple[tuple[int, float], ...]:
    def bad(detail: str) -> _Bad:
        return _Bad(f"must be a non-empty list of [step, learning_rate] pairs, steps strictly "
                    f"increasing from 0, e.g. [[0, 0.001], [500, 0.01]] ({detail})")
    if not isinstance(v, list | tuple) or not v:
        raise bad("no pairs given")
    out: list[tuple[int, float]] = []
    for pair in v:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and _is_int(pair[0])
                and (_is_int(pair[1]) or isinstance(pair[1], float))):
            raise bad(f"{json.dumps(pair)} is not an [integer, number] pair")
        if not pair[1] > 0:
            raise bad("learning rates must be > 0")
        if not out and pair[0] != 0:
            raise bad("the first step must be 0")
        if out and pair[0] <= out[-1][0]:
            raise bad(f"step {pair[0]} does not follow step {out[-1][0]}")
        out.append((pair[0], float(pair[1])))
    return tuple(out)


# --- range and cross-key checks ------------------------------------------------------------------
_NONNEG, _POS, _ONE, _UNIT, _SEED = NONNEG, POS, ONE, UNIT, SEED


def _upto(low: int, high: int, why: str) -> Check:
    """``low <= value <= high``, where ``high`` is far beyond what any machine could do (``why`` says
    so in the message): a value a few digits too long is refused by ``config check``, not mid-run."""
    def check(v: Any, r: Any) -> None:
        if v is not None and v < low:
            raise _Bad(f"must be >= {low}")
        if v is not None and v > high:
            raise _Bad(f"must be <= {high} ({why})")
    return check


_STEPS0, _STEPS1 = (_upto(n, 10**9, "10**9 steps would take years on any machine") for n in (0, 1))
_BATCH = _upto(1, 2**20, "2**20 images in one batch exceed any accelerator's memory")
_EXAMPLES = _upto(1, 10**9, "more images than any dataset holds")
_POINTS = _upto(1, 10**6, "10**6 points per image exceed any machine's memory and time")
_COUNT0, _COUNT1 = (_upto(n, 10**6, "10**6 exceeds any machine's disk or time") for n in (0, 1))
_MEGABYTES = _upto(1, 2**30, "2**30 MB is a pebibyte, more memory than any machine has")
_PIXELS = _rule(lambda v, r: 1 <= v <= r.info.num_pixels,
                lambda r: f"must be between 1 and {r.info.num_pixels} (H*W of {r['dataset']})")
_HAS_SPLIT = _rule(lambda v, r: v in r.info.split_sizes,
                   lambda r: f"{r['dataset']} has no such split (it has: {', '.join(r.info.split_sizes)})")
_UPTO_M = _rule(lambda v, r: 1 <= v <= r["m"], lambda r: f"must be between 1 and m (= {r['m']})")


def _fits(v: str, r: _Resolver) -> bool:
    if v not in _BUILTIN_MODELS:  # a factory is told the input shape
        return True
    if not r.user_data:
        return (r.info.image_shape == (1, 28, 28)) == (v == "mnist_cnn")
    return r.info.image_shape == (1, 28, 28) if v == "mnist_cnn" else r.info.image_shape[0] == 3


def _fits_text(r: _Resolver) -> str:
    use = r.info.default_model or 'your own model, "package.module:factory"'
    shape = "x".join(map(str, r.info.image_shape))
    return f"does not fit {r['dataset']} images ({shape}, C x H x W); use {use}"


_FITS = _rule(_fits, _fits_text)
_BUILTIN_RANGE = _rule(lambda v, r: r.user_data or v == r.info.value_range,
                       lambda r: f"must be {list(r.info.value_range)} (or null) for {r['dataset']}")
_FOLDER_ONLY = _rule(lambda v, r: r["dataset"].startswith("folder:"), "applies to folder: datasets only")


def _box_inside(v: tuple[int, int, int, int] | None, r: _Resolver) -> None:
    if v is None:
        if r["attribution_attack_method"] == "target":
            raise _Bad("must be a box [row0, col0, row1, col1] when attribution_attack_method is "
                       "'target' (--target-box or --set attribution_attack_target=[r0,c0,r1,c1])")
        return
    _, h, w = r.info.image_shape
    if not (0 <= v[0] < v[2] <= h and 0 <= v[1] < v[3] <= w):
        raise _Bad(f"must be a non-empty box inside the {h}x{w} image: "
                   f"0 <= row0 < row1 <= {h}, 0 <= col0 < col1 <= {w}")


# --- defaults that depend on other keys ----------------------------------------------------------
def _mnist_like(r: _Resolver) -> bool:
    """Trained like the original's MNIST scripts (the catalog's trait; users' data too)."""
    return r.user_data or r.info.mnist_scripts


def _dataset_default(key: str) -> Callable[[_Resolver], Any]:
    """The dataset's default for ``key`` (``data.catalog``: per dataset; users' data get MNIST's,
    lengths scaled to their pixel range and pixel counts to their image size)."""
    return lambda r: r.info.defaults[key]


def _default_model(r: _Resolver) -> str:
    if not r.info.default_model:
        raise UserInputError(
            f"config key 'model' is required for {r['dataset']}: no built-in model takes its "
            f"{'x'.join(map(str, r.info.image_shape))} (C x H x W) images; give \"package.module:factory\"")
    return r.info.default_model


def _default_run_dir(r: _Resolver) -> str:
    from robustattr.data.user import folder_name_for

    name = folder_name_for(r["dataset"]) if r.user_data else r["dataset"]
    return f"runs/{name}-{r['training_objective']}"


def _dataset_required(r: _Resolver) -> NoReturn:
    raise UserInputError(f"config key 'dataset' is required: add \"dataset\": \"mnist\" to the "
                         f"file or pass --set dataset=mnist (one of {', '.join(DATASETS)})")


def _training_steps(r: _Resolver) -> int:
    """The dataset's training steps, or (MNIST-like) the objective's paper steps."""
    steps = r.info.defaults.get("max_num_training_steps")
    return steps if steps is not None else objective_info(r["training_objective"]).paper_steps


def _objective(v: Any) -> str:
    """Any spelling the objectives registry accepts (ar, ig-norm, IG-NORM, IGNorm ...) → its config name."""
    if not isinstance(v, str):
        raise _Bad("must be a string naming a training objective")
    try:
        return objective_info(v).name
    except UserInputError:
        names = objective_names()
        raise _Bad(f"must be one of {', '.join(names)}{did_you_mean(v, names)} (or their paper names, "
                   "e.g. IG-NORM)") from None


def _objective_doc() -> str:
    return ", ".join(f"{i.name} ({i.display})" if i.display.lower() != i.name else i.name
                     for i in OBJECTIVES.values())


# The choices below are the registries' (attacks, members, saliency methods), never copies.
_LOSSES = PGD_LOSSES
_MEASURES = MEASURES
_SALIENCIES = SALIENCY_KINDS


def _attack_method(v: Any) -> str:
    """A registered attack member (``attacks.members``, read now: a member registered later counts) or strong."""
    return _choice(*MEMBERS, "strong")(v)

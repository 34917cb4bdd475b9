"""Run configuration: one flat JSON schema with per-dataset defaults, validated up front.

A config is a JSON object with the original code's keys (spec §6), so every original
``config.json`` loads unchanged once ``dataset`` is known. The ``Config`` dataclass is the schema:
each attribute declares its type check, default (a value, or a function of the other keys), range
check and doc, and that one table drives parsing, defaults, validation, ``to_dict`` and
``describe_keys``. Layers apply in order: ``base`` < the file < ``--set`` overrides.

    >>> cfg = load_config("configs/mnist/ig-norm.json", ["epsilon=0.2"])
    >>> cfg.epsilon, cfg.lambda_, cfg.to_dict()["lambda"]
    (0.2, 1.0, 1.0)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from robustattr.data.catalog import DATASETS, DatasetInfo
from robustattr.errors import UserInputError, did_you_mean
from robustattr.json_files import Shape, parse_json_text, read_json

if TYPE_CHECKING:
    import torch

__all__ = ["ALIASES", "Config", "describe_keys", "load_config", "load_run_or_config", "read_json_file",
           "resolve_device"]

#: The original code's other spellings (spec §10.5), accepted on input only.
ALIASES = {"k": "num_steps", "a": "step_size", "tf_random_seed": "random_seed",
           "numpy_random_seed": "np_random_seed"}
_SMALL = ("mnist", "fashion-mnist")  # 28x28 grey images, Adam; the others use the ResNets
_HELP = "run `robustattr config check --help` for every key"


class _Bad(Exception):
    """A value problem in words ("must be > 0"); ``_Spec.resolve`` adds the key, value and origin."""


class _Given(NamedTuple):
    value: Any
    origin: str  # the file, "--set", ...
    spelled: str  # the key as written (perhaps an alias)


class _Resolver:
    """Resolves keys lazily, so a default or a check may read other keys (dataset, m, ...)."""

    def __init__(self, given: dict[str, _Given]) -> None:
        self.given = given
        self.values: dict[str, Any] = {}
        self._info: DatasetInfo | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            self.values[key] = _SPECS[key].resolve(key, self)
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


Kind = Callable[[Any], Any]  # type check and normalisation (int -> float, list -> tuple)
Check = Callable[[Any, _Resolver], None]  # range / cross-key check


@dataclass(frozen=True)
class _Spec:
    kind: Kind
    default: Any  # a value, or a function of the _Resolver
    doc: str
    check: Check | None = None
    nullable: bool = False
    key: str = ""  # the JSON key, where it differs from the attribute name

    def resolve(self, key: str, r: _Resolver) -> Any:
        given = r.given.get(key)
        value = None
        try:
            if given is None:
                value = self.default(r) if callable(self.default) else self.default
            elif given.value is not None or not self.nullable:
                try:
                    value = self.kind(given.value)
                except _Bad as exc:
                    raise _Bad(f"{exc} or null" if self.nullable else str(exc)) from None
            if self.check is not None:
                self.check(value, r)
        except _Bad as exc:
            name = f"'{key}'" if given is None or given.spelled == key else f"'{given.spelled}' ('{key}')"
            shown = json.dumps(value if given is None else given.value, default=str)
            if len(shown) > 1000:  # a 5,000-digit --set value or a long list: the start says enough
                shown = f"{shown[:60]}... ({len(shown)} characters)"
            where = "default" if given is None else f"from {given.origin}"
            raise UserInputError(f"config key {name} = {shown} ({where}): {exc}") from None
        return value


def _key(kind: Kind, default: Any, doc: str, check: Check | None = None, *,
         nullable: bool = False, key: str = "") -> Any:
    return field(metadata={"spec": _Spec(kind, default, doc, check, nullable, key)})


# --- type checks ---------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not 1


def _kind(ok: Callable[[Any], bool], text: str, convert: Kind = lambda v: v) -> Kind:
    def kind(v: Any) -> Any:
        if not ok(v):
            raise _Bad(text)
        return convert(v)
    return kind


_INT = _kind(_is_int, "must be an integer")
_FLOAT = _kind(lambda v: _is_int(v) and abs(v) < 1e300 or isinstance(v, float) and math.isfinite(v),
               "must be a finite number", float)
_BOOL = _kind(lambda v: isinstance(v, bool), "must be true or false")
_STR = _kind(lambda v: isinstance(v, str | os.PathLike) and os.fspath(v) != "", "must be a non-empty string",
             os.fspath)
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


def _choice(*choices: str) -> Kind:
    def kind(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise _Bad(f"must be one of {', '.join(choices)}{did_you_mean(str(v), choices)}")
        return v
    return kind


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
def _rule(ok: Callable[[Any, _Resolver], bool], text: str | Callable[[_Resolver], str]) -> Check:
    """A check from a predicate and the allowed range in words (maybe a function of other keys)."""
    def check(v: Any, r: _Resolver) -> None:
        if v is not None and not ok(v, r):
            raise _Bad(text(r) if callable(text) else text)
    return check


_NONNEG = _rule(lambda v, r: v >= 0, "must be >= 0")
_POS = _rule(lambda v, r: v > 0, "must be > 0")
_ONE = _rule(lambda v, r: v >= 1, "must be >= 1")
_UNIT = _rule(lambda v, r: 0 <= v < 1, "must be in [0, 1)")
_SEED = _rule(lambda v, r: 0 <= v < 2**32, "must be between 0 and 4294967295 (2**32 - 1)")
_PIXELS = _rule(lambda v, r: 1 <= v <= r.info.num_pixels,
                lambda r: f"must be between 1 and {r.info.num_pixels} (H*W of {r['dataset']})")
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
    return r["dataset"] in _SMALL or r.user_data


def _by_dataset(small: Any, large: Any, **special: Any) -> Callable[[_Resolver], Any]:
    """The MNIST/F-MNIST value (also users' data), the GTSRB/Flower value, exceptions by name ('-' written '_')."""
    return lambda r: special.get(r["dataset"].replace("-", "_"), small if _mnist_like(r) else large)


def _in_pixels(small: float, large: float, **special: float) -> Callable[[_Resolver], float]:
    """Like ``_by_dataset`` for a length in pixel units: users' data get MNIST's value scaled from [0, 1]
    to their ``pixel_range``."""
    builtin = _by_dataset(small, large, **special)
    return lambda r: small * (r.info.value_range[1] - r.info.value_range[0]) if r.user_data else builtin(r)


def _top_k(small: int, large: int, **special: int) -> Callable[[_Resolver], int]:
    """Like ``_by_dataset`` for a pixel count: users' data get MNIST's fraction of the 784 pixels."""
    builtin = _by_dataset(small, large, **special)
    return lambda r: max(1, round(small * r.info.num_pixels / 784)) if r.user_data else builtin(r)


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
    if not _mnist_like(r):
        return 70001
    return 25000 if r["training_objective"] == "nat" else 100000


_OBJECTIVES = ("nat", "adv", "ar", "adv_ar")
_LOSSES = ("xent", "cw", "ar", "ar_approx", "adv_ar", "adv_ar_approx")
_METHODS = ("random", "topK", "mass_center", "target", "strong")
_MEASURES = ("kendall", "intersection", "spearman", "mass_center")
_SALIENCIES = ("ig", "simple_gradient", "input_x_gradient", "smoothgrad")  # attribution.SALIENCY_KINDS


@dataclass(frozen=True, kw_only=True)
class Config:
    """A validated run configuration; build it with ``load_config``, change it with ``replace``."""

    dataset: str = _key(_DATASET, _dataset_required,
                        "mnist, fashion-mnist, gtsrb, flower17, or npz:PATH / folder:PATH (your data; required)")
    model: str = _key(_MODEL, _default_model, "architecture, or \"package.module:factory\" called with "
                      "(num_classes, (C, H, W)) (default: the dataset's)", _FITS)
    device: str = _key(_DEVICE, "auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    data_root: str | None = _key(_STR, None, "dataset cache folder (default: $ROBUSTATTR_DATA)", nullable=True)
    data_path: str | None = _key(_STR, None, "folder with raw dataset files you have, tried first", nullable=True)
    pixel_range: tuple[float, float] | None = _key(
        _RANGE, None, "[low, high] the model and epsilon work in; npz:/folder: data (uint8 maps 0..255 onto "
        "it; default [0, 1]); null for the built-ins", _BUILTIN_RANGE, nullable=True)
    image_size: tuple[int, int] | None = _key(
        _SIZE, None, "folder: data: resize every image to [H, W] (default: keep, all one size)", _FOLDER_ONLY,
        nullable=True)
    flower_label_order: str = _key(_choice("original", "numeric"), "original", "original (string-sorted) or numeric")
    model_dir: str = _key(_STR, _default_run_dir, "the run directory")
    random_seed: int = _key(_INT, _by_dataset(4557077, 451760341), "torch seed (alias tf_random_seed)", _SEED)
    np_random_seed: int = _key(_INT, lambda r: r["random_seed"] if _mnist_like(r) else 216105420,
                               "data order seed (alias numpy_random_seed)", _SEED)
    max_num_training_steps: int = _key(_INT, _training_steps, "training steps", _NONNEG)
    num_output_steps: int = _key(_INT, 100, "log every N steps", _ONE)
    num_summary_steps: int = _key(_INT, 100, "write summaries every N steps", _ONE)
    num_checkpoint_steps: int = _key(_INT, _by_dataset(300, 1000), "checkpoint every N steps", _ONE)
    keep_checkpoints: int = _key(_INT, 3, "checkpoints kept", _ONE)
    training_batch_size: int = _key(_INT, _by_dataset(50, 64, flower17=16), "training batch size", _ONE)
    training_objective: str = _key(_choice(*_OBJECTIVES), "nat", "nat, adv (Madry), ar (IG-NORM), adv_ar (IG-SUM-NORM)")
    continue_train: bool = _key(_BOOL, False, "resume from the latest checkpoint in model_dir")
    init_from: str | None = _key(_STR, None, "run dir or checkpoint to start from", nullable=True)
    m: int = _key(_INT, 50, "IG points of the regulariser", _ONE)
    lambda_: float = _key(_FLOAT, 1.0, "regulariser weight (lambda, beta)", _NONNEG, key="lambda")
    approx_factor: int = _key(_INT, 1, "PGD keeps every approx_factor-th of the m points", _UPTO_M)
    optimizer: str = _key(_choice("adam", "momentum"), _by_dataset("adam", "momentum"), "adam or momentum")
    learning_rate: float = _key(_FLOAT, 1e-4, "Adam learning rate", _POS)
    learning_rate_schedule: tuple[tuple[int, float], ...] | None = _key(
        _schedule, None, "adam: [[step, lr], ...] piecewise constant like step_size_schedule, replacing "
        "learning_rate (null: constant learning_rate, the paper's)", nullable=True)
    step_size_schedule: tuple[tuple[int, float], ...] = _key(
        _schedule, ((0, 0.001), (500, 0.01), (60000, 0.001)), "momentum: [[step, lr], ...]")
    weight_decay: float = _key(_FLOAT, _by_dataset(0.0, 2e-4), "L2 weight decay", _NONNEG)
    momentum: float = _key(_FLOAT, 0.9, "momentum coefficient", _UNIT)
    loss_reduction: str = _key(_choice("original", "sum", "mean"), "original", "original (spec §3.2), sum or mean")
    memory_budget_mb: int | None = _key(_INT, None, "bounds the examples per IG chunk", _ONE, nullable=True)
    num_eval_examples: int = _key(_INT, lambda r: r.info.split_sizes["test"], "test images evaluated", _ONE)
    eval_batch_size: int = _key(_INT, 100, "evaluation batch size", _ONE)
    num_adversarial_examples: int | None = _key(
        _INT, None, "AA on the first N of them (default: all)", _ONE, nullable=True)
    num_attribution_examples: int | None = _key(
        _INT, None, "IN/CO on the first N of them (default: all)", _ONE, nullable=True)
    attribution_batch_size: int | None = _key(_INT, None, "images attacked together", _ONE, nullable=True)
    epsilon: float = _key(_FLOAT, _in_pixels(0.3, 8.0, fashion_mnist=0.1), "L-inf radius, pixel units", _POS)
    num_steps: int = _key(_INT, _by_dataset(40, 7, fashion_mnist=20), "PGD steps (alias k)", _NONNEG)
    step_size: float = _key(_FLOAT, _in_pixels(0.01, 2.0), "PGD step size (alias a)", _POS)
    random_start: bool = _key(_BOOL, True, "PGD starts at a random point of the ball")
    epsilon_ramp_steps: int = _key(
        _INT, 0, "training only: the PGD radius grows linearly to epsilon over the first N steps "
        "(0: constant epsilon, the paper's); evaluations always use epsilon", _NONNEG)
    loss_func: str = _key(_choice(*_LOSSES), "xent", "the loss PGD ascends")
    num_IG_steps: int = _key(_INT, 100, "IG points of the evaluation saliency", _ONE)
    attribution_attack_method: str = _key(
        _choice(*_METHODS), "topK", "attribution attack; strong = worst case over a portfolio of attacks "
        "(writes eval_attribution_strong.json beside the faithful file)")
    attribution_attack_measure: str = _key(_choice(*_MEASURES), "kendall", "what the attack minimises")
    attribution_attack_target: tuple[int, int, int, int] | None = _key(
        _BOX, None, "[row0, col0, row1, col1] box of the target method", _box_inside, nullable=True)
    saliency_type: str = _key(_choice(*_SALIENCIES), "ig", "saliency map attacked: " + ", ".join(_SALIENCIES))
    ig_baseline: float = _key(_FLOAT, 0.0, "ig: the path's start, a constant in pixel units (0: black)")
    smoothgrad_samples: int = _key(_INT, 50, "smoothgrad: noisy copies per map", _ONE)
    smoothgrad_noise: float = _key(_FLOAT, 0.15, "smoothgrad: noise sigma as a fraction of the pixel range", _POS)
    lens_window: int = _key(_INT, 3, "side of the LENS metrics' square neighbourhood (odd)",
                            _rule(lambda v, r: v >= 1 and v % 2 == 1, "must be an odd integer >= 1"))
    attribution_attack_surrogate: str = _key(
        _choice("softplus", "none"), "softplus",
        "softplus (ReLUs smoothed, same weights) or none (the model's own gradients)")
    k_top: int = _key(_INT, _top_k(200, 100, fashion_mnist=100, flower17=1000), "top-k pixels attacked", _PIXELS)
    eval_k_top: int = _key(_INT, _top_k(100, 100, flower17=1000), "k of the reported intersection", _PIXELS)
    attribution_attack_step_size: float = _key(_FLOAT, _in_pixels(0.01, 1.0), "attack step size", _POS)
    attribution_attack_steps: int = _key(_INT, _by_dataset(100, 100, gtsrb=50), "attack iterations", _NONNEG)
    attribution_attack_times: int = _key(_INT, 3, "attack restarts", _ONE)
    attribution_attack_flat_rule: str = _key(
        _choice("random_sign", "none"), "random_sign",
        "where the walk's objective is flat: a seeded random sign step (random_sign) or no move (none, "
        "the behaviour before 2026-12); docs/attribution-evaluation.md")
    strong_random_starts: int = _key(_INT, 2, "strong evaluation: topK walks from random starts", _NONNEG)
    strong_direction_ig_steps: int | None = _key(
        _INT, None, "strong evaluation: IG points of the non-faithful members' ascent direction "
        "(default num_IG_steps // 4)", _ONE, nullable=True)

    def dataset_info(self) -> DatasetInfo:
        """The dataset's facts: the catalog's, or (``npz:``/``folder:``) those of the prepared data."""
        from robustattr.data import dataset_info

        return dataset_info(self.dataset, root=self.data_root, pixel_range=self.pixel_range, image_size=self.image_size)

    def load_split(self, split: str) -> Any:
        """``data.load`` of one split of the dataset with this config's data keys: an ``ImageSplit``."""
        from robustattr import data

        return data.load(self.dataset, split, root=self.data_root, source_dir=self.data_path,
                         label_order=self.flower_label_order, pixel_range=self.pixel_range,
                         image_size=self.image_size)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON keys (``lambda``, not ``lambda_``) in schema order; lists, not tuples."""
        return {key: _jsonable(getattr(self, attr)) for key, attr in _ATTR.items()}

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` (attribute names, JSON keys or aliases), validated again."""
        renamed = {_KEY_OF.get(name, name): value for name, value in changes.items()}
        return _build([(self.to_dict(), "the config"), (renamed, "replace()")])

    def digest(self) -> str:
        """sha256 of the canonical JSON (sorted keys, compact): same values, same digest."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_SPECS: dict[str, _Spec] = {f.metadata["spec"].key or f.name: f.metadata["spec"] for f in fields(Config)}
_ATTR: dict[str, str] = {f.metadata["spec"].key or f.name: f.name for f in fields(Config)}
_KEY_OF: dict[str, str] = {attr: key for key, attr in _ATTR.items()}


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, tuple) else v


def describe_keys() -> str:
    """One line per key with its doc (for ``--help`` epilogs and docs), then the aliases."""
    lines = [f"  {key:<29} {spec.doc}" for key, spec in _SPECS.items()]
    aliases = ", ".join(f"{a} -> {k}" for a, k in ALIASES.items())
    return "config keys:\n" + "\n".join(lines) + f"\naliases: {aliases}; \"_comment\" keys are ignored"


# --- loading -------------------------------------------------------------------------------------
def _canonical(raw: Mapping[str, Any], origin: str) -> dict[str, _Given]:
    out: dict[str, _Given] = {}
    for spelled, value in raw.items():
        if spelled.startswith("_comment"):
            continue
        key = ALIASES.get(spelled, spelled)
        if key not in _SPECS:
            hint = did_you_mean(spelled, [*_SPECS, *ALIASES])
            raise UserInputError(f"unknown config key '{spelled}' (from {origin}){hint}; {_HELP}")
        if key in out and out[key].value != value:
            raise UserInputError(
                f"config keys '{out[key].spelled}' and '{spelled}' (from {origin}) both set '{key}', "
                f"to {json.dumps(out[key].value, default=str)} and {json.dumps(value, default=str)}; keep one")
        out[key] = _Given(value, origin, spelled)
    return out


def _build(layers: Sequence[tuple[Mapping[str, Any], str]]) -> Config:
    given: dict[str, _Given] = {}
    for raw, origin in layers:
        given.update(_canonical(raw, origin))
    r = _Resolver(given)
    return Config(**{attr: r[key] for key, attr in _ATTR.items()})


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
    return _build([*stack, *layers, (_parse_overrides(overrides), "--set")])


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
    return _build([(read_json_file(file), str(file)), ({"model_dir": str(p)}, f"run directory {p}"),
                   (_parse_overrides(overrides), "--set")])


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; an unavailable CUDA device is a UserInputError."""
    import torch

    try:
        _DEVICE(name)
    except _Bad as exc:
        raise UserInputError(f"device '{name}' {exc}") from None
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError(f"device '{name}' requested but CUDA is not available "
                                 f"(torch {torch.__version__}); use --set device=cpu or device=auto")
        count, index = torch.cuda.device_count(), int(name.partition(":")[2] or 0)
        if index >= count:
            raise UserInputError(f"device '{name}' does not exist: this machine has {count} CUDA "
                                 f"device(s), cuda:0..cuda:{count - 1}")
    return torch.device(name)

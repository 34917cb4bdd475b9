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
from robustattr.devices import resolve_device
from robustattr.errors import UserInputError, did_you_mean
from robustattr.json_files import Shape, parse_json_text, read_json
from robustattr.attacks.attribution_objectives import FLAT_RULES, MEASURES, SURROGATES
from robustattr.attacks.members import MEMBERS
from robustattr.attacks.pgd import PGD_LOSSES
from robustattr.attribution import SALIENCY_KINDS
from robustattr.training.objectives.registry import OBJECTIVES, all_objective_keys, objective_info, objective_names
from robustattr.keys import (
    BOOL, FLOAT, INT, NONNEG, ONE, POS, SEED, STR, UNIT, BadValue, Check, Given, KeySpec, Kind, choice, is_int, kind,
    rule,
)

__all__ = ["ALIASES", "Config", "describe_keys", "load_config", "load_run_or_config", "read_json_file",
           "resolve_device"]

#: The original code's other spellings (spec §10.5), accepted on input only.
ALIASES = {"k": "num_steps", "a": "step_size", "tf_random_seed": "random_seed",
           "numpy_random_seed": "np_random_seed"}
_HELP = "run `robustattr config check --help` for every key"


_Bad = BadValue
_Given = Given
_Spec = KeySpec


class _Resolver:
    """Resolves keys lazily, so a default or a check may read other keys (dataset, m, ...)."""

    def __init__(self, given: dict[str, _Given]) -> None:
        self.given = given
        self.values: dict[str, Any] = {}
        self._info: DatasetInfo | None = None

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            spec = _SPECS.get(key) or objective_info(self["training_objective"]).keys[key]
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
    random_seed: int = _key(_INT, _dataset_default("random_seed"), "torch seed (alias tf_random_seed)", _SEED)
    np_random_seed: int = _key(_INT, lambda r: r.info.defaults["np_random_seed"] or r["random_seed"],
                               "data order seed (alias numpy_random_seed)", _SEED)
    max_num_training_steps: int = _key(_INT, _training_steps, "training steps", _STEPS0)
    num_output_steps: int = _key(_INT, 100, "log every N steps", _STEPS1)
    num_summary_steps: int = _key(_INT, 100, "write summaries every N steps", _STEPS1)
    num_checkpoint_steps: int = _key(_INT, _dataset_default("num_checkpoint_steps"), "checkpoint every N steps", _STEPS1)
    keep_checkpoints: int = _key(_INT, 3, "checkpoints kept", _COUNT1)
    training_batch_size: int = _key(_INT, _dataset_default("training_batch_size"), "training batch size", _BATCH)
    training_objective: str = _key(_objective, "nat", "the training objective: " + _objective_doc())
    continue_train: bool = _key(_BOOL, False, "resume from the latest checkpoint in model_dir")
    init_from: str | None = _key(_STR, None, "run dir or checkpoint to start from", nullable=True)
    m: int = _key(_INT, 50, "IG points of the regulariser", _POINTS)
    lambda_: float = _key(_FLOAT, 1.0, "regulariser weight (lambda, beta)", _NONNEG, key="lambda")
    approx_factor: int = _key(_INT, 1, "PGD keeps every approx_factor-th of the m points", _UPTO_M)
    optimizer: str = _key(_choice("adam", "momentum"), _dataset_default("optimizer"), "adam or momentum")
    learning_rate: float = _key(_FLOAT, 1e-4, "Adam learning rate", _POS)
    learning_rate_schedule: tuple[tuple[int, float], ...] | None = _key(
        _schedule, None, "adam: [[step, lr], ...] piecewise constant like step_size_schedule, replacing "
        "learning_rate (null: constant learning_rate, the paper's)", nullable=True)
    step_size_schedule: tuple[tuple[int, float], ...] = _key(
        _schedule, ((0, 0.001), (500, 0.01), (60000, 0.001)), "momentum: [[step, lr], ...]")
    weight_decay: float = _key(_FLOAT, _dataset_default("weight_decay"), "L2 weight decay", _NONNEG)
    momentum: float = _key(_FLOAT, 0.9, "momentum coefficient", _UNIT)
    loss_reduction: str = _key(_choice("original", "sum", "mean"), "original", "original (spec §3.2), sum or mean")
    memory_budget_mb: int | None = _key(_INT, None, "bounds the examples per IG chunk", _MEGABYTES, nullable=True)
    num_eval_examples: int = _key(_INT, lambda r: r.info.split_sizes["test"], "test images evaluated", _EXAMPLES)
    eval_batch_size: int = _key(_INT, 100, "evaluation batch size", _BATCH)
    num_adversarial_examples: int | None = _key(
        _INT, None, "AA on the first N of them (default: all)", _EXAMPLES, nullable=True)
    num_attribution_examples: int | None = _key(
        _INT, None, "IN/CO on the first N of them (default: all)", _EXAMPLES, nullable=True)
    attribution_batch_size: int | None = _key(_INT, None, "images attacked together", _BATCH, nullable=True)
    epsilon: float = _key(_FLOAT, _dataset_default("epsilon"), "L-inf radius, pixel units", _POS)
    num_steps: int = _key(_INT, _dataset_default("num_steps"), "PGD steps (alias k)", _STEPS0)
    step_size: float = _key(_FLOAT, _dataset_default("step_size"), "PGD step size (alias a)", _POS)
    random_start: bool = _key(_BOOL, True, "PGD starts at a random point of the ball")
    epsilon_ramp_steps: int = _key(
        _INT, 0, "training only: the PGD radius grows linearly to epsilon over the first N steps "
        "(0: constant epsilon, the paper's); evaluations always use epsilon", _STEPS0)
    loss_func: str = _key(_choice(*_LOSSES), "xent", "the loss PGD ascends")
    num_IG_steps: int = _key(_INT, 100, "IG points of the evaluation saliency", _POINTS)
    attribution_attack_method: str = _key(
        _attack_method, "topK", "attribution attack: a member of the attack registry (" + ", ".join(MEMBERS)
        + "), or strong = worst case over a portfolio of attacks "
        "(writes eval_attribution_strong.json beside the faithful file)")
    attribution_attack_measure: str = _key(_choice(*_MEASURES), "kendall", "what the attack minimises")
    attribution_attack_target: tuple[int, int, int, int] | None = _key(
        _BOX, None, "[row0, col0, row1, col1] box of the target method", _box_inside, nullable=True)
    saliency_type: str = _key(_choice(*_SALIENCIES), "ig", "saliency map attacked: " + ", ".join(_SALIENCIES))
    ig_baseline: float = _key(_FLOAT, 0.0, "ig: the path's start, a constant in pixel units (0: black)")
    smoothgrad_samples: int = _key(_INT, 50, "smoothgrad: noisy copies per map", _POINTS)
    smoothgrad_noise: float = _key(_FLOAT, 0.15, "smoothgrad: noise sigma as a fraction of the pixel range", _POS)
    lens_window: int = _key(_INT, 3, "side of the LENS metrics' square neighbourhood (odd)",
                            _rule(lambda v, r: v >= 1 and v % 2 == 1, "must be an odd integer >= 1"))
    attribution_attack_surrogate: str = _key(
        _choice(*SURROGATES), "softplus",
        "softplus (ReLUs smoothed, same weights) or none (the model's own gradients)")
    k_top: int = _key(_INT, _dataset_default("k_top"), "top-k pixels attacked", _PIXELS)
    eval_k_top: int = _key(_INT, _dataset_default("eval_k_top"), "k of the reported intersection", _PIXELS)
    attribution_attack_step_size: float = _key(_FLOAT, _dataset_default("attribution_attack_step_size"), "attack step size", _POS)
    attribution_attack_steps: int = _key(_INT, _dataset_default("attribution_attack_steps"), "attack iterations", _STEPS0)
    attribution_attack_times: int = _key(_INT, 3, "attack restarts", _COUNT1)
    attribution_attack_flat_rule: str = _key(
        _choice(*FLAT_RULES), "random_sign",
        "where the walk's objective is flat: a seeded random sign step (random_sign) or no move (none, "
        "the behaviour before 2026-12); docs/attribution-evaluation.md")
    attribution_attack_budget: str = _key(
        _choice("fast", "standard", "thorough"), "standard", "strong evaluation: budget level (random starts "
        "1/2/4, steps x0.5/x1/x2); docs/attribution-evaluation.md")
    strong_random_starts: int | None = _key(
        _INT, None, "strong evaluation: copies of the restarted members (default: the budget's)", _COUNT0,
        nullable=True)
    strong_direction_ig_steps: int | None = _key(
        _INT, None, "strong evaluation: IG points of the members' ascent direction "
        "(default num_IG_steps)", _POINTS, nullable=True)
    certify_sigma: float = _key(
        _FLOAT, lambda r: 0.12 * (r.info.value_range[1] - r.info.value_range[0]), "eval certify: Gaussian noise "
        "sigma of the smoothed map, pixel units (default 0.12 of the pixel range, Cohen et al. 2019's smallest)", _POS)
    certify_samples: int = _key(_INT, 512, "eval certify: noisy copies n per smoothed map", _POINTS)
    certify_confidence: float = _key(_FLOAT, 0.99, "eval certify: the certificate holds with probability eta",
                                     _rule(lambda v, r: 0 < v < 1, "must be in (0, 1), e.g. 0.99"))
    certify_k: int = _key(
        _INT, lambda r: min(r["eval_k_top"], (r.info.num_pixels + 1) // 2), "eval certify: top-k certified "
        "(default eval_k_top)", _rule(lambda v, r: 1 <= v <= (r.info.num_pixels + 1) // 2, lambda r: "must be "
                                      f"between 1 and {(r.info.num_pixels + 1) // 2} (2k - 1 <= H*W pixels)"))
    certify_radius: float = _key(_FLOAT, lambda r: 0.02 * (r.info.value_range[1] - r.info.value_range[0]),
                                 "eval certify: l2 radius rho, pixel units (default 0.02 of the pixel range)", _NONNEG)
    certify_sparsity: float = _key(_FLOAT, 0.2, "eval certify: fraction of pixels each noisy copy's map sets to 1",
                                   _rule(lambda v, r: 0 < v <= 1, "must be in (0, 1]"))
    certify_attack_steps: int = _key(_INT, 10, "eval certify: steps of the l2 attack on the smoothed map", _STEPS0)
    certify_attack_samples: int = _key(
        _INT, 32, "eval certify: noisy copies giving the attack's direction (the first of the n)",
        _rule(lambda v, r: 1 <= v <= r["certify_samples"], lambda r: f"must be between 1 and certify_samples "
              f"(= {r['certify_samples']})"))

    #: The chosen objective's own keys (``training.objectives.registry``), (JSON key, value) pairs in
    #: its order; read as attributes (``cfg.beta``) and written by ``to_dict`` after the common keys.
    objective_settings: tuple[tuple[str, Any], ...] = field(default=(), repr=False)

    def __getattr__(self, name: str) -> Any:
        for key, value in object.__getattribute__(self, "objective_settings"):
            if key == name:
                return value
        raise AttributeError(f"{type(self).__name__} has no key {name!r}")

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
        out = {key: _jsonable(getattr(self, attr)) for key, attr in _ATTR.items()}
        out.update((key, _jsonable(value)) for key, value in self.objective_settings)
        return out

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` (attribute names, JSON keys or aliases), validated again; a change of
        ``training_objective`` drops the old objective's own keys."""
        renamed = {_KEY_OF.get(name, name): value for name, value in changes.items()}
        current = self.to_dict()
        if "training_objective" in renamed:
            for key, _ in self.objective_settings:
                current.pop(key)
        return _build([(current, "the config"), (renamed, "replace()")])

    def digest(self) -> str:
        """sha256 of the canonical JSON (sorted keys, compact): same values, same digest."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_SPECS: dict[str, _Spec] = {f.metadata["spec"].key or f.name: f.metadata["spec"] for f in fields(Config)
                            if "spec" in f.metadata}
_ATTR: dict[str, str] = {f.metadata["spec"].key or f.name: f.name for f in fields(Config) if "spec" in f.metadata}
_KEY_OF: dict[str, str] = {attr: key for key, attr in _ATTR.items()}


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, tuple) else v


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


def _build(layers: Sequence[tuple[Mapping[str, Any], str]]) -> Config:
    given: dict[str, _Given] = {}
    for raw, origin in layers:
        given.update(_canonical(raw, origin))
    r = _Resolver(given)
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

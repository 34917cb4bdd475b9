"""The config schema: one table, class :class:`Config`, each attribute a key with its type check,
default (a value, or a function of the other keys: ``checks``), range check and doc. That one
table drives parsing, defaults, validation, ``to_dict`` and ``describe_keys``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from robustattr.data.catalog import DatasetInfo
from robustattr.attacks.attribution_objectives import FLAT_RULES, SURROGATES
from robustattr.attacks.members import MEMBERS

from robustattr.config.checks import (
    _BATCH,
    _BOOL,
    _BOX,
    _BUILTIN_RANGE,
    _COUNT0,
    _COUNT1,
    _DATASET,
    _DEVICE,
    _EXAMPLES,
    _FITS,
    _FLOAT,
    _FOLDER_ONLY,
    _INT,
    _LOSSES,
    _MEASURES,
    _MEGABYTES,
    _MODEL,
    _NONNEG,
    _HAS_SPLIT,
    _PIXELS,
    _POINTS,
    _POS,
    _RANGE,
    _SALIENCIES,
    _SEED,
    _SIZE,
    _STEPS0,
    _STEPS1,
    _STR,
    _Spec,
    _UNIT,
    _UPTO_M,
    _attack_method,
    _box_inside,
    _choice,
    _dataset_default,
    _dataset_required,
    _default_model,
    _default_run_dir,
    _key,
    _objective,
    _objective_doc,
    _rule,
    _schedule,
    _training_steps,
)


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
    eval_split: str = _key(
        _choice("test", "validation"), "test", "the images every evaluation reads: test (the paper's) or "
        "validation (MNIST/Fashion-MNIST: the first 5,000 training images, which training never sees); "
        "tune recipes and attacks on validation, report test", _HAS_SPLIT)
    num_eval_examples: int = _key(_INT, lambda r: r.info.split_sizes["test"], "images evaluated (of eval_split)", _EXAMPLES)
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
        "1/2/4; the other members' moves per iteration 0.45/0.9/1.8 beside the faithful walk's); "
        "docs/attribution-evaluation.md")
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
        from robustattr.config.loading import build

        renamed = {_KEY_OF.get(name, name): value for name, value in changes.items()}
        current = self.to_dict()
        if "training_objective" in renamed:
            for key, _ in self.objective_settings:
                current.pop(key)
        return build([(current, "the config"), (renamed, "replace()")])

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

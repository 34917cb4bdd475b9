"""robustattr.config: the original files, the presets, defaults, validation, --set, digests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from robustattr.config import ALIASES, Config, describe_keys, load_config, load_run_or_config, resolve_device
from robustattr.errors import UserInputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ORIGINALS = sorted((CONFIGS / "original").glob("*/*.json"))
FOLDER_TO_DATASET = {"MNIST": "mnist", "Fashion-MNIST": "fashion-mnist", "GTSRB": "gtsrb", "Flower": "flower17"}
METHODS = ("natural", "madry", "ig-norm", "ig-sum-norm")
PRESETS = sorted(p for ds in FOLDER_TO_DATASET.values() for p in (CONFIGS / ds).glob("*.json"))
ORIGINAL_NAME = {"natural": "NATURAL-config.json", "madry": "Madry-config.json",
                 "ig-norm": "IG-NORM-config.json", "ig-sum-norm": "IG-SUM-NORM-config.json"}


def mnist(*overrides: str) -> Config:
    return load_config(None, ["dataset=mnist", *overrides])


def original_path(dataset: str, method: str) -> Path:
    folder = CONFIGS / "original" / {v: k for k, v in FOLDER_TO_DATASET.items()}[dataset]
    name = ORIGINAL_NAME[method]
    return folder / name if (folder / name).exists() else folder / name.replace("-config", "_config")


# --- spec §6: what every original file must give ---------------------------------------------------
COMMON = {
    "mnist": dict(random_seed=4557077, np_random_seed=4557077, num_checkpoint_steps=300, training_batch_size=50,
                  num_eval_examples=10000, epsilon=0.3, num_steps=40, step_size=0.01, k_top=200, eval_k_top=100,
                  attribution_attack_step_size=0.01, attribution_attack_steps=100, optimizer="adam"),
    "fashion-mnist": dict(random_seed=4557077, num_checkpoint_steps=300, training_batch_size=50, num_eval_examples=10000,
                          epsilon=0.1, num_steps=20, step_size=0.01, k_top=100, eval_k_top=100,
                          attribution_attack_steps=100),
    "gtsrb": dict(data_path="data", random_seed=451760341, np_random_seed=216105420, max_num_training_steps=70001,
                  training_batch_size=64, step_size_schedule=((0, 0.001), (500, 0.01), (60000, 0.001)),
                  weight_decay=0.0002, momentum=0.9, lambda_=1.0, num_eval_examples=12630, epsilon=8.0, num_steps=7,
                  step_size=2.0, k_top=100, eval_k_top=100, attribution_attack_step_size=1.0,
                  attribution_attack_steps=50, optimizer="momentum"),
    "flower17": dict(data_path="data", random_seed=451760341, np_random_seed=216105420, max_num_training_steps=70001,
                     num_checkpoint_steps=1000, training_batch_size=16, weight_decay=0.0002, num_eval_examples=136,
                     epsilon=8.0, num_steps=7, step_size=2.0, k_top=1000, eval_k_top=1000,
                     attribution_attack_step_size=1.0, attribution_attack_steps=100),
}
SHARED = dict(num_output_steps=100, num_summary_steps=100, continue_train=False, eval_batch_size=100,
              random_start=True, num_IG_steps=100, attribution_attack_method="topK",
              attribution_attack_measure="kendall", saliency_type="ig", attribution_attack_times=3)
FLOWER_AR = ((0, 0.0001), (500, 0.001), (60000, 0.0001))
PER_FILE = {  # (folder, file) -> method-specific values (spec §6 tables)
    ("MNIST", "IG-NORM-config.json"): dict(m=50, lambda_=1.0, approx_factor=5, training_objective="ar",
                                           loss_func="ar_approx", max_num_training_steps=100000),
    ("MNIST", "IG-SUM-NORM-config.json"): dict(lambda_=0.1, training_objective="adv_ar", loss_func="adv_ar_approx"),
    ("MNIST", "NATURAL-config.json"): dict(m=10, max_num_training_steps=25000, training_objective="nat"),
    ("MNIST", "Madry-config.json"): dict(m=10, approx_factor=1, training_objective="adv", loss_func="xent"),
    ("MNIST", "config.json"): dict(m=50, training_objective="ar", model_dir="models/ar_trained_with_pgd_ig_approx_m50"),
    ("Fashion-MNIST", "config.json"): dict(training_objective="nat", max_num_training_steps=100000, m=50,
                                           loss_func="xent", model_dir="models/nat_trained"),
    ("Fashion-MNIST", "IG-SUM-NORM-config.json"): dict(lambda_=0.1, approx_factor=5, max_num_training_steps=100000),
    ("GTSRB", "NATURAL-config.json"): dict(num_checkpoint_steps=1000, m=10, approx_factor=1),
    ("GTSRB", "IG-SUM-NORM-config.json"): dict(num_checkpoint_steps=10000, approx_factor=10, lambda_=1.0,
                                               training_objective="adv_ar"),
    ("Flower", "NATURAL_config.json"): dict(step_size_schedule=((0, 0.001), (500, 0.01), (60000, 0.001)),
                                            lambda_=1.0, model_dir="models/nat_trained"),
    ("Flower", "IG-NORM-config.json"): dict(step_size_schedule=FLOWER_AR, lambda_=0.1, approx_factor=10, m=50),
    ("Flower", "IG-SUM-NORM-config.json"): dict(step_size_schedule=FLOWER_AR, lambda_=0.1,
                                                training_objective="adv_ar"),
    ("Flower", "config.json"): dict(step_size_schedule=FLOWER_AR, training_objective="ar"),
}


def test_twenty_originals_are_shipped() -> None:
    assert len(ORIGINALS) == 20


@pytest.mark.parametrize("path", ORIGINALS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_original_file_loads_unchanged_with_the_spec_values(path: Path) -> None:
    dataset = FOLDER_TO_DATASET[path.parent.name]
    cfg = load_config(path, [f"dataset={dataset}"])
    expected = {**SHARED, **COMMON[dataset], **PER_FILE.get((path.parent.name, path.name), {})}
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.dataset == dataset and cfg.model_dir.startswith("models/")


@pytest.mark.parametrize("dataset", FOLDER_TO_DATASET.values())
@pytest.mark.parametrize("method", METHODS)
def test_preset_is_faithful_to_the_original(dataset: str, method: str) -> None:
    preset = load_config(CONFIGS / dataset / f"{method}.json")
    original = load_config(original_path(dataset, method), [f"dataset={dataset}"])
    assert preset.model_dir == f"runs/{dataset}/{method}"
    assert preset.replace(model_dir="x", data_path=None) == original.replace(model_dir="x", data_path=None)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_preset_loads_with_canonical_keys(path: Path) -> None:
    raw = json.loads(path.read_text())
    cfg = load_config(path)
    assert not set(raw) & set(ALIASES)
    assert cfg.dataset == path.parent.name
    assert cfg.model_dir == f"runs/{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("dataset", FOLDER_TO_DATASET.values())
@pytest.mark.parametrize("method", METHODS)
def test_quick_preset_is_smaller_and_documented(dataset: str, method: str) -> None:
    path = CONFIGS / dataset / f"{method}-quick.json"
    full, quick = load_config(CONFIGS / dataset / f"{method}.json"), load_config(path)
    assert "reduced" in json.loads(path.read_text())["_comment"].lower()
    assert quick.training_objective == full.training_objective and quick.lambda_ == full.lambda_
    assert quick.max_num_training_steps < full.max_num_training_steps
    assert quick.num_eval_examples < full.num_eval_examples and quick.attribution_attack_times == 1
    assert quick.num_steps * quick.step_size >= quick.epsilon - 1e-9  # PGD can still reach the ball's edge


def test_quick_presets_of_a_dataset_share_the_evaluation_settings() -> None:
    keys = ("epsilon", "num_steps", "step_size", "num_eval_examples", "attribution_attack_steps", "num_IG_steps")
    for dataset in FOLDER_TO_DATASET.values():
        settings = {tuple(getattr(load_config(CONFIGS / dataset / f"{m}-quick.json"), k) for k in keys) for m in METHODS}
        assert len(settings) == 1, dataset


# --- defaults --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "expected"), [
    (["dataset=mnist"], dict(model="mnist_cnn", max_num_training_steps=25000, epsilon=0.3, num_steps=40,
                             step_size=0.01, k_top=200, eval_k_top=100, optimizer="adam", weight_decay=0.0,
                             training_batch_size=50, num_checkpoint_steps=300, num_eval_examples=10000,
                             random_seed=4557077, np_random_seed=4557077, model_dir="runs/mnist-nat",
                             device="auto", lambda_=1.0, m=50, approx_factor=1, learning_rate=1e-4)),
    (["dataset=mnist", "training_objective=ar"], dict(max_num_training_steps=100000, model_dir="runs/mnist-ar")),
    (["dataset=mnist", "random_seed=7"], dict(random_seed=7, np_random_seed=7)),
    (["dataset=fashion-mnist", "training_objective=adv"],
     dict(max_num_training_steps=100000, epsilon=0.1, num_steps=20, k_top=100)),
    (["dataset=gtsrb"], dict(model="gtsrb_resnet", max_num_training_steps=70001, epsilon=8.0, num_steps=7,
                             step_size=2.0, optimizer="momentum", weight_decay=2e-4, training_batch_size=64,
                             num_checkpoint_steps=1000, np_random_seed=216105420, random_seed=451760341,
                             attribution_attack_steps=50, attribution_attack_step_size=1.0, num_eval_examples=12630,
                             step_size_schedule=((0, 0.001), (500, 0.01), (60000, 0.001)))),
    (["dataset=flower17", "training_objective=ar"],
     dict(model="flower_resnet", training_batch_size=16, k_top=1000, eval_k_top=1000, attribution_attack_steps=100,
          num_eval_examples=136, max_num_training_steps=70001, flower_label_order="original")),
])
def test_defaults_by_dataset_and_objective(overrides: list[str], expected: dict) -> None:
    cfg = load_config(None, overrides)
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_dataset_may_come_from_base_or_set_and_set_wins() -> None:
    assert load_config(None, base={"dataset": "gtsrb"}).dataset == "gtsrb"
    assert load_config(CONFIGS / "mnist" / "natural.json", ["dataset=fashion-mnist"]).dataset == "fashion-mnist"


def test_dataset_is_required() -> None:
    with pytest.raises(UserInputError, match=r"'dataset' is required.*--set dataset=mnist"):
        load_config(ORIGINALS[0])


# --- bad values: each message names the key --------------------------------------------------------
BAD = [
    ("epsilon=0", r"'epsilon' = 0 .*must be > 0"),
    ("epsilon=-0.3", r"'epsilon' = -0.3 .*must be > 0"),
    ("epsilon=NaN", r"'epsilon' = NaN .*finite number"),
    ("num_steps=3.0", r"'num_steps' = 3.0 .*must be an integer"),
    ("num_steps=-1", r"'num_steps' = -1 .*must be >= 0"),
    ("k=2.5", r"'k' \('num_steps'\) = 2.5 .*must be an integer"),
    ("m=true", r"'m' = true .*must be an integer"),
    ("max_num_training_steps=-5", r"'max_num_training_steps' = -5 .*>= 0"),
    ("eval_k_top=785", r"'eval_k_top' = 785 .*between 1 and 784"),
    ("k_top=0", r"'k_top' = 0 .*between 1 and 784"),
    ("approx_factor=60", r"'approx_factor' = 60 .*between 1 and m \(= 50\)"),
    ("momentum=1.0", r"'momentum' = 1.0 .*\[0, 1\)"),
    ("momentum=-0.1", r"'momentum' = -0.1 .*\[0, 1\)"),
    ("step_size_schedule=[]", r"'step_size_schedule' = \[\] .*non-empty list"),
    ("step_size_schedule=[[100,0.1]]", r"'step_size_schedule' .*first step must be 0"),
    ("step_size_schedule=[[0,0.1],[0,0.2]]", r"'step_size_schedule' .*step 0 does not follow step 0"),
    ("step_size_schedule=[[0,-1]]", r"'step_size_schedule' .*learning rates must be > 0"),
    ("step_size_schedule=[[0.5,0.1]]", r"'step_size_schedule' .*not an \[integer, number\] pair"),
    ("step_size_schedule=0.1", r"'step_size_schedule' = 0.1 .*list"),
    ("attribution_attack_target=[0,0,30,30]", r"'attribution_attack_target' .*inside the 28x28 image"),
    ("attribution_attack_target=[5,5,5,10]", r"'attribution_attack_target' .*non-empty box"),
    ("attribution_attack_target=[1,2,3]", r"'attribution_attack_target' .*4 integers"),
    ("attribution_attack_method=target", r"'attribution_attack_target' = null .*'target'"),
    ("training_objective=madri", r"'training_objective' = \"madri\" .*nat, adv, ar, adv_ar"),
    ("loss_func=ce", r"'loss_func' = \"ce\" .*xent"),
    ("attribution_attack_method=topk", r"'attribution_attack_method' .*did you mean 'topK'"),
    ("attribution_attack_measure=tau", r"'attribution_attack_measure' .*kendall"),
    ("saliency_type=gradient", r"'saliency_type' .*ig, simple_gradient"),
    ("model=resnet", r"'model' = \"resnet\" .*mnist_cnn"),
    ("model=gtsrb_resnet", r"'model' = \"gtsrb_resnet\" .*does not fit mnist"),
    ("optimizer=sgd", r"'optimizer' = \"sgd\" .*adam, momentum"),
    ("loss_reduction=avg", r"'loss_reduction' .*original, sum, mean"),
    ("device=gpu", r"'device' = \"gpu\" .*auto, cpu, cuda or cuda:N"),
    ("flower_label_order=sorted", r"'flower_label_order' .*original, numeric"),
    ("random_seed=-1", r"'random_seed' = -1 .*between 0 and 4294967295"),
    ("np_random_seed=4294967296", r"'np_random_seed' = 4294967296 .*between 0 and 4294967295"),
    ("epsilon=1e999", r"'epsilon' = Infinity .*finite number"),
    ("lambda=" + "9" * 400, r"'lambda' = 9+ .*finite number"),
    ("tf_random_seed=1.5", r"'tf_random_seed' \('random_seed'\) .*integer"),
    ("lambda=-1", r"'lambda' = -1 .*>= 0"),
    ("lambda=\"1\"", r"'lambda' = \"1\" .*number"),
    ("random_start=yes", r"'random_start' = \"yes\" .*true or false"),
    ("learning_rate=0", r"'learning_rate' = 0 .*> 0"),
    ("num_eval_examples=0", r"'num_eval_examples' = 0 .*>= 1"),
    ("memory_budget_mb=0", r"'memory_budget_mb' = 0 .*>= 1"),
    ("init_from=3", r"'init_from' = 3 .*string or null"),
    ("model_dir=", r"'model_dir' = \"\" .*non-empty string"),
    ("model_dir=null", r"'model_dir' = null .*non-empty string"),
    ("weight_decay=-1e-4", r"'weight_decay' .*>= 0"),
    ("continue_train=1", r"'continue_train' = 1 .*true or false"),
    ("dataset=cifar10", r"'dataset' = \"cifar10\" .*mnist, fashion-mnist, gtsrb, flower17"),
]


@pytest.mark.parametrize(("override", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_rejected_naming_the_key(override: str, match: str) -> None:
    with pytest.raises(UserInputError, match=match) as info:
        mnist(override)
    assert ("(from --set)" in str(info.value) or "(default)" in str(info.value)) and "\n" not in str(info.value)


def test_bad_value_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"dataset": "gtsrb", "k_top": 2000}')
    with pytest.raises(UserInputError, match=rf"'k_top' = 2000 \(from {path}\): .*between 1 and 1024 \(H\*W of gtsrb\)"):
        load_config(path)


def test_approx_factor_is_checked_against_the_final_m() -> None:
    assert mnist("m=10", "approx_factor=5").approx_factor == 5
    with pytest.raises(UserInputError, match=r"'approx_factor' = 5 .*m \(= 3\)"):
        mnist("m=3", "approx_factor=5")


def test_target_method_with_a_box() -> None:
    cfg = mnist("attribution_attack_method=target", "attribution_attack_target=[0,0,28,14]")
    assert cfg.attribution_attack_target == (0, 0, 28, 14)
    assert cfg.to_dict()["attribution_attack_target"] == [0, 0, 28, 14]


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(UserInputError, match=r"unknown config key 'epsilom' .*did you mean 'epsilon'.*--help"):
        mnist("epsilom=0.3")
    with pytest.raises(UserInputError, match=r"unknown config key 'zzz' \(from --set\); run"):
        mnist("zzz=1")


def test_int_is_accepted_for_float_keys_and_normalised() -> None:
    cfg = mnist("lambda=1", "epsilon=1")
    assert isinstance(cfg.lambda_, float) and isinstance(cfg.epsilon, float)
    assert json.dumps(cfg.to_dict()["lambda"]) == "1.0"


def test_paths_accept_pathlike(tmp_path: Path) -> None:
    cfg = mnist().replace(model_dir=tmp_path / "run")
    assert cfg.model_dir == str(tmp_path / "run")


# --- parsing ---------------------------------------------------------------------------------------
def test_duplicate_comments_are_ignored_but_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"_comment": "a", "dataset": "mnist", "_comment": "b", "_comment_x": 1}')
    assert load_config(path).dataset == "mnist"
    path.write_text('{"dataset": "mnist", "epsilon": 0.3, "epsilon": 0.2}')
    with pytest.raises(UserInputError, match=r"c\.json: key 'epsilon' appears more than once"):
        load_config(path)


def test_alias_and_canonical_key(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"dataset": "mnist", "k": 40, "num_steps": 40, "a": 0.02, "numpy_random_seed": 3}')
    cfg = load_config(path)
    assert (cfg.num_steps, cfg.step_size, cfg.np_random_seed) == (40, 0.02, 3)
    path.write_text('{"dataset": "mnist", "k": 40, "num_steps": 20}')
    with pytest.raises(UserInputError, match=r"'k' and 'num_steps' .*both set 'num_steps', to 40 and 20"):
        load_config(path)
    with pytest.raises(UserInputError, match=r"'random_seed' and 'tf_random_seed'"):
        mnist("random_seed=1", "tf_random_seed=2")


def test_a_later_layer_may_use_the_other_spelling(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"dataset": "mnist", "k": 40}')
    assert load_config(path, ["num_steps=5"]).num_steps == 5
    assert load_config(path, base={"num_steps": 7}).num_steps == 40


@pytest.mark.parametrize(("text", "match"), [
    ('{"dataset": "mnist",\n  "epsilon": 0.3,,\n}', r"invalid JSON at line 2 column 18"),
    ('["dataset", "mnist"]', r"must be a JSON object"),
    ("", r"invalid JSON at line 1 column 1"),
])
def test_invalid_json_names_the_file_and_position(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(UserInputError, match=rf"broken\.json.*{match}"):
        load_config(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"config file .*nope\.json not found"):
        load_config(tmp_path / "nope.json")
    with pytest.raises(UserInputError, match=r"is a directory"):
        load_config(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"model_dir": "caf\xe9"}')
    with pytest.raises(UserInputError, match=r"cannot read config file .*latin1\.json: not UTF-8"):
        load_config(tmp_path / "latin1.json")


def test_set_values_are_json_else_strings() -> None:
    cfg = mnist("epsilon=0.25", "num_steps=7", "random_start=false", "data_root=null", "model_dir=runs/a=b",
                "data_path= /data/x ", "step_size_schedule=[[0, 1], [10, 0.5]]", "a=0.5")
    assert (cfg.epsilon, cfg.num_steps, cfg.random_start, cfg.data_root) == (0.25, 7, False, None)
    assert (cfg.model_dir, cfg.data_path, cfg.step_size) == ("runs/a=b", "/data/x", 0.5)
    assert cfg.step_size_schedule == ((0, 1.0), (10, 0.5))
    assert mnist("epsilon=0.1", "epsilon=0.2").epsilon == 0.2  # a repeated --set: the last wins


@pytest.mark.parametrize("item", ["epsilon", "=3", " =3"])
def test_malformed_set_is_an_error(item: str) -> None:
    with pytest.raises(UserInputError, match=r"--set .* is malformed: write KEY=VALUE"):
        mnist(item)


# --- Config object ---------------------------------------------------------------------------------
def test_config_is_frozen_and_round_trips() -> None:
    cfg = load_config(CONFIGS / "flower17" / "ig-norm.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epsilon = 1.0  # type: ignore[misc]
    d = cfg.to_dict()
    assert list(d)[:3] == ["dataset", "model", "device"] and "lambda" in d and "lambda_" not in d
    # Every field is a key, but the chosen objective's own keys, which follow the common ones.
    fields = [f.name for f in dataclasses.fields(Config) if f.name != "objective_settings"]
    assert fields == [k if k != "lambda" else "lambda_" for k in d][:len(fields)]
    assert json.loads(json.dumps(d)) == d
    assert load_config(None, base=d) == cfg
    assert hash(cfg) == hash(load_config(None, base=d))


def test_replace_validates_again() -> None:
    cfg = mnist()
    assert cfg.replace(lambda_=0.5).lambda_ == 0.5
    assert cfg.replace(**{"lambda": 0.25}).lambda_ == 0.25
    assert cfg.replace(k=10).num_steps == 10
    assert cfg.replace(training_objective="ar").max_num_training_steps == 25000  # resolved values are kept
    with pytest.raises(UserInputError, match=r"'epsilon' = -1 \(from replace\(\)\)"):
        cfg.replace(epsilon=-1)
    with pytest.raises(UserInputError, match=r"unknown config key 'epsilom'.*did you mean 'epsilon'"):
        cfg.replace(epsilom=0.1)


def test_digest_is_stable() -> None:
    a = load_config(CONFIGS / "mnist" / "ig-norm.json")
    b = load_config(None, base=dict(reversed(list(a.to_dict().items()))))
    c = load_config(original_path("mnist", "ig-norm"), ["dataset=mnist", "model_dir=runs/mnist/ig-norm"])
    canonical = json.dumps(a.to_dict(), sort_keys=True, separators=(",", ":"))
    assert a.digest() == b.digest() == c.digest() == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(a.digest()) == 64 and a.replace(epsilon=0.2).digest() != a.digest()
    assert a.replace(lambda_=1).digest() == a.digest()  # 1 and 1.0 are the same value


def test_describe_keys_lists_every_key_once() -> None:
    text = describe_keys()
    for key in mnist().to_dict():
        assert f"  {key} " in text
    assert "k -> num_steps" in text


# --- run directories and devices -------------------------------------------------------------------
def test_load_run_or_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(UserInputError, match=rf"run directory {run} has no config.json"):
        load_run_or_config(run)
    (run / "config.json").write_text(json.dumps(mnist("model_dir=elsewhere").to_dict()))
    assert load_run_or_config(run).model_dir == str(run)
    assert load_run_or_config(str(run), ["epsilon=0.1"]).epsilon == 0.1
    assert load_run_or_config(run / "config.json").model_dir == "elsewhere"
    with pytest.raises(UserInputError, match=r"missing does not exist"):
        load_run_or_config(tmp_path / "missing")


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserInputError, match=r"device 'cuda' requested but CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(UserInputError, match=r"device 'gpu' must be auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(UserInputError, match=r"device 'cuda:1' does not exist: .* 1 CUDA device"):
        resolve_device("cuda:1")

"""`robustattr config check`: resolved JSON on stdout, or one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robustattr.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MNIST_ORIGINAL = CONFIGS / "original" / "MNIST" / "IG-NORM-config.json"


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["config", "check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_preset_prints_the_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(capsys, CONFIGS / "mnist" / "ig-norm.json", "--set", "epsilon=0.2")
    resolved = json.loads(out)
    assert code == 0 and err == ""
    assert (resolved["dataset"], resolved["epsilon"], resolved["lambda"], resolved["m"]) == ("mnist", 0.2, 1.0, 50)


def test_original_file_with_dataset_from_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, MNIST_ORIGINAL, "--set", "dataset=mnist")
    resolved = json.loads(out)
    assert code == 0
    assert (resolved["num_steps"], resolved["step_size"], resolved["approx_factor"]) == (40, 0.01, 5)
    assert "k" not in resolved and "a" not in resolved


CLI_BAD = [
    ([MNIST_ORIGINAL], "'dataset' is required"),
    ([MNIST_ORIGINAL, "--set", "dataset=mnst"], "'dataset' = \"mnst\""),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "epsilom=0.1"], "did you mean 'epsilon'"),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "num_steps=2.0"], "'num_steps' = 2.0"),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "eval_k_top=1000"], "'eval_k_top' = 1000"),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "momentum=1"], "'momentum' = 1"),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "loss_func=cross"], "'loss_func' = \"cross\""),
    ([MNIST_ORIGINAL, "--set", "dataset=mnist", "--set", "attribution_attack_method=target"],
     "'attribution_attack_target' = null"),
    ([MNIST_ORIGINAL, "--set", "dataset"], "--set 'dataset' is malformed"),
    (["no/such/config.json"], "no/such/config.json not found"),
]


@pytest.mark.parametrize(("args", "expected"), CLI_BAD, ids=[c[1] for c in CLI_BAD])
def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], args: list, expected: str) -> None:
    code, out, err = check(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("robustattr: error: ") and err.count("\n") == 1
    assert expected in err and "Traceback" not in err


def test_invalid_json_and_duplicate_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"dataset": "mnist", "epsilon": .3}')
    code, _, err = check(capsys, path)
    assert code == 2 and f"{path}: invalid JSON at line 1 column 33" in err
    path.write_text('{"dataset": "mnist", "m": 10, "m": 20}')
    code, _, err = check(capsys, path)
    assert code == 2 and "key 'm' appears more than once" in err and err.count("\n") == 1


@pytest.mark.parametrize(("args", "code", "needle"), [
    ([str(CONFIGS / "gtsrb" / "natural-quick.json"), "--set", "device=cpu"], 0, '"device": "cpu"'),
    ([str(CONFIGS / "gtsrb" / "natural.json"), "--set", "k_top=5000"], 2, "'k_top' = 5000"),
])
@pytest.mark.slow
def test_as_a_subprocess(args: list[str], code: int, needle: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "robustattr", "config", "check", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == code and "Traceback" not in proc.stderr
    if code == 0:
        assert needle in proc.stdout and json.loads(proc.stdout)["dataset"] == "gtsrb"
    else:
        assert proc.stdout == "" and proc.stderr.count("\n") == 1 and needle in proc.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from robustattr import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"robustattr {__version__}\n"

"""The certificate against the attack on real MNIST, and ``robustattr eval certify`` end to end."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from robustattr import cli
from robustattr.attacks.smoothed_map_attack import smoothed_map_attack
from robustattr.attribution.smoothgrad_certificate import keep_count, smoothgrad_certificate
from robustattr.evaluation.certify import CERTIFY_EXAMPLES_FILE, CERTIFY_RESULT_FILE, certificate_seed

# Enough samples for a non-zero certificate (e ~ 0.14 at d = 784), few attack steps: ~15 s on one core.
REAL = dict(k=50, samples=256, sigma=0.12, radius=0.01)
TINY = ["num_attribution_examples=4", "certify_samples=32", "certify_attack_steps=2", "certify_attack_samples=8",
        "certify_k=20"]


@pytest.fixture
def run_dir(natural_mnist_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(natural_mnist_run, tmp_path / "run"))


def _model_and_images(run: Path, count: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, list[int]]:
    from robustattr.checkpoints import load_run_model
    from robustattr.config import load_run_or_config

    cfg = load_run_or_config(run, [])
    model, _ = load_run_model(cfg, device="cpu")
    x, y = cfg.load_split("test").batch(torch.arange(count))
    with torch.no_grad():
        ok = model(x).argmax(dim=1) == y
    ids = ok.nonzero().squeeze(1).tolist()
    return model, x[ok], y[ok], ids


@pytest.mark.slow
def test_certified_never_exceeds_attacked_on_real_mnist(natural_mnist_run):
    model, x, y, ids = _model_and_images(natural_mnist_run, 6)
    seeds = [certificate_seed(0, i) for i in ids]
    cert = smoothgrad_certificate(model, x, confidence=0.9, sparsity=0.2, seeds=seeds, target=y, **REAL)
    attack = smoothed_map_attack(model, x, y, cert.smoothed, steps=3, direction_samples=16, seeds=seeds,
                                 keep=keep_count(0.2, 784), bounds=(0.0, 1.0), **REAL)
    print(f"\nreal MNIST, {len(ids)} images: certified {cert.certified_intersection.mean():.3f}, "
          f"attacked {attack.intersection.mean():.3f}")
    assert (cert.certified_intersection <= attack.intersection).all()
    assert cert.certified_intersection.max() > 0  # not vacuous: something is certified
    assert attack.moved.any() and (attack.label_kept_steps > 0).all()
    # The attack stays in the l2 ball and the pixel range, and its reported map is the true one there.
    assert ((attack.x_adv - x).flatten(1).norm(dim=1) <= REAL["radius"] + 1e-6).all()
    assert attack.x_adv.min() >= 0 and attack.x_adv.max() <= 1


def test_certificate_does_not_depend_on_the_batch(natural_mnist_run):
    model, x, y, ids = _model_and_images(natural_mnist_run, 3)
    seeds = [certificate_seed(5, i) for i in ids]
    settings = dict(k=20, samples=40, sigma=0.12, radius=0.0, confidence=0.5, sparsity=0.1)
    together = smoothgrad_certificate(model, x, seeds=seeds, **settings)
    last = smoothgrad_certificate(model, x[-1:], seeds=seeds[-1:], chunk_size=1, **settings)
    torch.testing.assert_close(together.smoothed[-1:], last.smoothed, rtol=0, atol=0)
    assert together.certified_count[-1] == last.certified_count[0]
    torch.testing.assert_close(together.target, y)  # a correctly classified image's top logit is its label
    # The attack scores with the certificate's own samples: its map of the clean image is the same.
    from robustattr.attacks.smoothed_map_attack import _score
    from robustattr.attribution.smoothgrad_certificate import certificate_noise

    noise = certificate_noise(seeds, 0.12, (1, 28, 28), dtype=x.dtype, device=x.device)
    again, _ = _score(model, x, y, noise, 40, keep_count(0.1, 784), torch.zeros(len(ids), 784), chunk=2)
    torch.testing.assert_close(again, together.smoothed, rtol=0, atol=0)


def _cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.mark.slow
def test_eval_certify_writes_both_files_the_same_for_any_batch_size(natural_mnist_run, tmp_path, capsys):
    texts = []
    for batch in (1, 4):
        run = Path(shutil.copytree(natural_mnist_run, tmp_path / f"run{batch}"))
        code, result, err = _cli(capsys, "eval", "certify", run, *_sets(*TINY, f"attribution_batch_size={batch}"))
        assert code == 0, err
        assert json.loads((run / CERTIFY_RESULT_FILE).read_text()) == result
        with open(run / CERTIFY_EXAMPLES_FILE, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [int(r["index"]) for r in rows] == [0, 1, 2, 3]
        for r in rows:
            assert float(r["certified_top_k_intersection"]) <= float(r["attacked_top_k_intersection"]) <= 1
        assert result["num_examples"] == 4 and result["num_attacked"] == sum(int(r["correct"]) for r in rows)
        assert result["num_certified_above_attacked"] == 0
        for key in ("certified_top_k_intersection", "attacked_top_k_intersection", "certify_sigma", "certify_samples",
                    "certify_confidence", "certify_k", "certify_radius", "certify_margin", "checkpoint_step"):
            assert key in result
        texts.append((run / CERTIFY_EXAMPLES_FILE).read_text())
    assert texts[0] == texts[1]


@pytest.mark.slow
def test_eval_certify_resumes_and_refuses_bad_settings(run_dir, capsys):
    code, first, _ = _cli(capsys, "eval", "certify", run_dir, *_sets(*TINY))
    assert code == 0
    csv_text = (run_dir / CERTIFY_EXAMPLES_FILE).read_text()
    code, again, err = _cli(capsys, "eval", "certify", run_dir, *_sets(*TINY))
    assert code == 0 and again == first
    assert (run_dir / CERTIFY_EXAMPLES_FILE).read_text() == csv_text  # every row reused, none appended
    for bad, words in (("certify_confidence=1.5", "must be in (0, 1)"), ("certify_k=400", "between 1 and 392"),
                       ("certify_attack_samples=64", "between 1 and certify_samples")):
        code, _, err = _cli(capsys, "eval", "certify", run_dir, *_sets(*TINY, bad))
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err

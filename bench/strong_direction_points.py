"""Strong evaluation: directions from n // 4 IG points against all n, image by image (issue 22).

Runs the strong portfolio twice on the same correctly classified MNIST test images with the same
seeds, once with ``direction_n_steps = n // 4`` and once with all n, and prints each side's mean IN
and Kendall, the share of images where each side is at or below the other, and the seconds. The
measurement behind the default (all n) in docs/attribution-evaluation.md ("Direction points").

    OMP_NUM_THREADS=1 .venv/bin/python bench/strong_direction_points.py --images 40 --steps 30 --ig-steps 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from attack_batched_vs_single import correctly_classified  # noqa: E402
from robustattr import data  # noqa: E402
from robustattr.attacks import AttackSettings  # noqa: E402
from robustattr.attacks.strong_attribution import strong_attribution_attack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--ig-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the per-image values as JSON")
    args = parser.parse_args()
    device = torch.device("cpu")
    model, _ = common.trained_mnist_cnn(device)
    x, y = correctly_classified(model, data.load("mnist", "test"), args.images, device)
    base = AttackSettings(epsilon=0.3, step_size=0.01, steps=args.steps, k_top=200, eval_k_top=100,
                          n_steps=args.ig_steps, seed=4557077)
    out = {}
    for label, points in (("quarter", max(1, args.ig_steps // 4)), ("full", args.ig_steps)):
        start = time.perf_counter()
        r = strong_attribution_attack(model, x, y, base, direction_n_steps=points, example_ids=range(len(x)))
        out[label] = {"seconds": time.perf_counter() - start, "members": list(r.members),
                      **{m: getattr(r, m)[r.attacked].tolist() for m in ("intersection", "kendall")}}
    for m in ("intersection", "kendall"):
        q, f = torch.tensor(out["quarter"][m]), torch.tensor(out["full"][m])
        print(f"{m}: mean n//4 {q.mean():.4f}, all n {f.mean():.4f}; n//4 at or below all n on "
              f"{(q <= f).float().mean():.1%} of images, all n at or below n//4 on {(f <= q).float().mean():.1%}")
    print(f"seconds: n//4 {out['quarter']['seconds']:.0f}, all n {out['full']['seconds']:.0f}")
    if args.out:
        args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()

"""Integrated Gradients maps per second: ``robustattr.attribution.integrated_gradients`` vs Captum.

Workloads: 100 steps (right Riemann sum), zero baseline, batch 64, target = the label, on
(a) the MNIST CNN with real MNIST test images and (b) the GTSRB ResNet with random [0, 255] images
(no GTSRB data is needed); both models freshly initialised (IG's cost does not depend on training).
Reference: Captum's ``IntegratedGradients(model).attribute(x, baselines=0, target=y, n_steps=100,
method="riemann_right", internal_batch_size=...)``, unmodified, on the same model object.

Both sides get their batching knob tuned first, on an 8-image sub-batch (the points per forward are
what matters, and those are the same as in the 64-image run): ours ``chunk_size`` (examples per
forward, ×100 points), Captum ``internal_batch_size`` (points per forward, a multiple of the batch).
Then the full batch is timed, the two sides taking turns, and the median is reported.

``value`` / ``reference``: maps per second over both workloads together (128 maps / total median
seconds); ``met`` needs each workload's ratio ≥ 1.2. Per-model figures are in ``settings``.

    .venv/bin/python bench/ig_vs_captum.py --repeats 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from captum.attr import IntegratedGradients  # noqa: E402

import common  # noqa: E402
from robustattr import data, models  # noqa: E402
from robustattr.attribution import integrated_gradients  # noqa: E402

NAME = "ig_vs_captum"
GOAL = 1.2
OUR_CHUNKS = (1, 2, 4)  # examples per forward → 100, 200, 400 points
CAPTUM_IBS = (128, 256, 512)  # points per forward (a multiple of the batch: 128, 256, 512 here)


def inputs(name: str, batch: int, device: torch.device, data_root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "mnist_cnn":
        x, y = data.load("mnist", "test", root=data_root).batch(slice(0, batch))
        return x.to(device), y.to(device)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (batch, 3, 32, 32), generator=gen).float()
    y = torch.randint(0, 43, (batch,), generator=gen)
    return x.to(device), y.to(device)


def tune(candidates: dict, device, log, rounds: int) -> tuple[dict, dict]:
    """Best candidate per side: every candidate is warmed up, then timed ``rounds`` times, all of them
    taking turns (so a change of machine load hits every candidate alike); the minimum counts.

    ``candidates``: side -> {value: fn}. Returns (side -> best value, side -> {value: seconds}).
    """
    flat = {(side, value): fn for side, fns in candidates.items() for value, fn in fns.items()}
    for fn in flat.values():
        fn()
    seconds = {key: [] for key in flat}
    for r in range(rounds):
        for key in (list(flat) if r % 2 == 0 else list(flat)[::-1]):
            seconds[key].append(common.time_call(flat[key], device))
    table = {side: {str(v): min(seconds[(side, v)]) for v in fns} for side, fns in candidates.items()}
    best = {side: min(fns, key=lambda v: table[side][str(v)]) for side, fns in candidates.items()}
    for side in candidates:
        log(f"  tuned {side}: " + ", ".join(f"{k}: {v:.2f}s" for k, v in table[side].items()) + f" -> {best[side]}")
    return best, table


def run_model(name: str, args, device: torch.device, log) -> dict:
    torch.manual_seed(0)
    model = models.create(name).to(device).eval()
    x, y = inputs(name, args.batch, device, args.data_root)
    steps = args.steps
    captum = IntegratedGradients(model)

    def ours_for(chunk, xb=x, yb=y):
        return lambda: integrated_gradients(model, xb, yb, n_steps=steps, chunk_size=chunk)

    def captum_for(ibs, xb=x, yb=y):
        return lambda: captum.attribute(xb, baselines=0.0, target=yb, n_steps=steps, method="riemann_right",
                                        internal_batch_size=ibs)

    sub = min(args.tune_batch, args.batch)
    xs, ys = x[:sub], y[:sub]
    log(f"{NAME} / {name}: tuning on {sub} images, {args.tune_rounds} rounds")
    best, table = tune({"ours chunk_size": {c: ours_for(c, xs, ys) for c in OUR_CHUNKS},
                        "captum internal_batch_size": {c: captum_for(c, xs, ys) for c in CAPTUM_IBS}},
                       device, log, args.tune_rounds)
    chunk, ibs = best["ours chunk_size"], best["captum internal_batch_size"]

    a, b = ours_for(chunk)(), captum_for(ibs)()
    rel_diff = float((a - b).abs().max() / b.abs().max())
    log(f"{NAME} / {name}: timing batch {args.batch}, {steps} steps")
    times = common.interleaved({"ours": ours_for(chunk), "captum": captum_for(ibs)}, repeats=args.repeats,
                               warmup=args.warmup, device=device, log=log)
    t_ours, t_captum = common.median(times["ours"]), common.median(times["captum"])
    return {
        "model": name, "batch": args.batch, "steps": steps,
        "inputs": "MNIST test images 0..63" if name == "mnist_cnn" else "random integer images in [0, 255]",
        "ours_maps_per_s": args.batch / t_ours, "captum_maps_per_s": args.batch / t_captum,
        "ratio": t_captum / t_ours, "ours_chunk_size": chunk, "captum_internal_batch_size": ibs,
        "tuning_images": sub, "tuning_min_seconds": table,
        "seconds_ours": times["ours"], "seconds_captum": times["captum"],
        "max_abs_diff_over_max_abs": rel_diff,
    }


def run(args) -> dict:
    log = common.logger(args.quiet)
    device = torch.device(args.device)
    per_model = [run_model(name, args, device, log) for name in args.models]
    t_ours = sum(args.batch / m["ours_maps_per_s"] for m in per_model)
    t_captum = sum(args.batch / m["captum_maps_per_s"] for m in per_model)
    maps = args.batch * len(per_model)
    worst = min(m["ratio"] for m in per_model)
    settings = {
        "workload": "IG maps, 100 steps right Riemann, zero baseline, batch 64; value = maps/s over all models",
        "models": per_model, "repeats": args.repeats, "warmup": args.warmup,
        "reference": "captum.attr.IntegratedGradients(method='riemann_right'), internal_batch_size tuned",
        "min_per_model_ratio": worst,
    }
    return common.entry(name=NAME, value=maps / t_ours, reference=maps / t_captum, goal=GOAL, unit="IG maps/s",
                        device=device, settings=settings, extra_goal=f"each model's ratio >= {GOAL:g}",
                        extra_met=worst >= GOAL)


def main() -> None:
    parser = common.common_args(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--tune-batch", type=int, default=8, help="images used to tune the chunk sizes")
    parser.add_argument("--tune-rounds", type=int, default=2, help="timed calls per candidate when tuning (min counts)")
    parser.add_argument("--models", nargs="+", default=["mnist_cnn", "gtsrb_resnet"])
    parser.set_defaults(warmup=0)  # tuning already ran every chunk shape of the timed calls
    common.run_and_report(run, parser.parse_args())


if __name__ == "__main__":
    main()

"""Achieved FLOP/s of one IG-NORM training step, as a fraction of a large fp32 matmul's FLOP/s.

Workload: one IG-NORM step of the training loop at the MNIST paper settings (spec §3, §6.1) —
batch 50 of real MNIST training images, PGD ε 0.3 / step 0.01 on the ``ar_approx`` loss
(m = 50, approx_factor 5 → 10 path points per PGD step), then the update: clean CE + λ·‖IG‖₁
with all m = 50 points (double backprop), ``loss.backward()`` and Adam 1e-4. The paper's 40 PGD
steps make one step ~100 s on a 2-core CPU, so the step is run with ``--pgd-steps`` PGD steps
(default 4; stated in ``settings``): the PGD part and the update are both present, and per PGD step
the work is the same as in the full step. The whole step is also extrapolated to K = 40 from
the measured PGD and update parts (``settings.full_step_estimate``).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one untimed run of the
same step (matmuls and convolutions, forward, backward and double backward); achieved FLOP/s =
counted FLOPs / median step seconds. Reference: the FLOP/s of a 2048×2048 fp32 ``torch.mm`` in the
same process (median of repeats, the faster of a run before and one after the step). ``ratio`` =
achieved / reference. The step is chunked as the training loop chunks it by default
(``robustattr.attribution.default_chunk_size``: ~128 path points per double-backprop pass on a
CPU, the whole batch on a GPU); ``settings.variant_whole_batch`` is the same step with every
pass holding the whole batch (the default before, and the GPU default), timed in the same run.

    .venv/bin/python bench/ig_norm_step_utilisation.py --repeats 3
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import common  # noqa: E402
from robustattr import data, models  # noqa: E402
from robustattr.attacks import pgd  # noqa: E402
from robustattr.attribution import default_chunk_size  # noqa: E402
from robustattr.training import ObjectiveParams  # noqa: E402
from robustattr.training.objectives import ig_norm  # noqa: E402

NAME = "ig_norm_step_utilisation"
MATMUL_N = 2048


def matmul_flops_per_s(device: torch.device, repeats: int, log) -> tuple[float, list[float]]:
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, generator=gen).to(device)
    b = torch.randn(MATMUL_N, MATMUL_N, generator=gen).to(device)
    flops = 2 * MATMUL_N**3
    times = common.interleaved({"matmul": lambda: torch.mm(a, b)}, repeats=repeats, warmup=2, device=device)["matmul"]
    log(f"  matmul {MATMUL_N}^3: median {common.median(times) * 1e3:.1f} ms")
    return flops / common.median(times), times


def run(args) -> dict:
    log = common.logger(args.quiet)
    device = torch.device(args.device)
    split = data.load("mnist", "train", root=args.data_root)
    x, y = split.batch(slice(0, 50))
    x, y = x.to(device), y.to(device)
    torch.manual_seed(4557077)
    model = models.create("mnist_cnn").to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if args.chunk < 0:  # what the training loop uses on this device
        chunk, pgd_chunk = default_chunk_size(50, device), default_chunk_size(10, device)
    else:
        chunk = pgd_chunk = args.chunk or None
    params = ObjectiveParams(reduction="sum", lam=1.0, m=50, approx_factor=5, epsilon=0.3,
                             num_steps=args.pgd_steps, step_size=0.01, loss_func="ar_approx",
                             chunk_size=chunk, pgd_chunk_size=pgd_chunk)

    def step(p: ObjectiveParams = params) -> None:
        optimizer.zero_grad(set_to_none=True)
        out = ig_norm(model, x, y, p)
        out.loss.backward()
        optimizer.step()

    def pgd_only() -> None:
        pgd(model, x, y, 0.3, args.pgd_steps, 0.01, True, "ar_approx", (0.0, 1.0), n_steps=50, approx_factor=5,
            chunk_size=pgd_chunk)

    log(f"{NAME}: IG-NORM step, batch 50, PGD {args.pgd_steps} steps (ar_approx, 10 points), update m=50, "
        f"chunk {chunk} (update) / {pgd_chunk} (PGD)")
    ref_rate, mm_times = matmul_flops_per_s(device, max(5, args.repeats), log)
    fns = {"step": step, "pgd": pgd_only}
    variant = None
    if args.compare_whole_batch and (chunk or pgd_chunk):  # the same step, one pass per batch
        variant = dataclasses.replace(params, chunk_size=None, pgd_chunk_size=None)
        fns["step_whole_batch"] = lambda: step(variant)
    times = common.interleaved(fns, repeats=args.repeats, warmup=args.warmup, device=device, log=log)
    step_flops = common.count_flops(step)
    pgd_flops = common.count_flops(pgd_only)
    ref_rate_after, mm_times_after = matmul_flops_per_s(device, max(5, args.repeats), log)
    reference = max(ref_rate, ref_rate_after)  # the faster of the two: the machine's best matmul rate
    t_step, t_pgd = common.median(times["step"]), common.median(times["pgd"])
    achieved = step_flops / t_step

    # Extrapolation to the paper's K = 40: PGD part scales with K, the rest (update) does not.
    k = args.pgd_steps
    pgd_step_t, pgd_step_f = t_pgd / k, pgd_flops / k
    update_t, update_f = max(t_step - t_pgd, 1e-9), step_flops - pgd_flops
    full_t, full_f = 40 * pgd_step_t + update_t, 40 * pgd_step_f + update_f
    settings = {
        "workload": f"one IG-NORM step, MNIST CNN, batch 50, PGD {k} steps (paper: 40) on ar_approx "
                    "(m=50, approx_factor 5), update with m=50, Adam",
        "pgd_steps": k, "chunk_size": chunk, "pgd_chunk_size": pgd_chunk, "repeats": args.repeats, "warmup": args.warmup,
        "step_seconds": times["step"], "step_gflop": step_flops / 1e9,
        "achieved_gflop_per_s": achieved / 1e9,
        "pgd_part": {"seconds": times["pgd"], "gflop": pgd_flops / 1e9, "gflop_per_s": pgd_flops / t_pgd / 1e9},
        "update_part": {"seconds_estimate": update_t, "gflop": update_f / 1e9, "gflop_per_s": update_f / update_t / 1e9},
        "full_step_estimate": {"pgd_steps": 40, "seconds": full_t, "gflop": full_f / 1e9,
                               "gflop_per_s": full_f / full_t / 1e9, "ratio": full_f / full_t / reference},
        "variant_whole_batch": None if variant is None else {
            "chunk_size": None, "pgd_chunk_size": None,
            "seconds": times["step_whole_batch"],
            "gflop_per_s": step_flops / common.median(times["step_whole_batch"]) / 1e9,
            "ratio": step_flops / common.median(times["step_whole_batch"]) / reference,
            "note": "same FLOPs (chunking only splits the batch of each double-backprop pass)"},
        "matmul": f"{MATMUL_N}x{MATMUL_N} fp32 torch.mm",
        "matmul_gflop_per_s_before_after": [ref_rate / 1e9, ref_rate_after / 1e9],
        "matmul_seconds": mm_times + mm_times_after,
        "flops_counted": "torch.utils.flop_counter.FlopCounterMode (mm/addmm/bmm/convolution incl. backward)",
    }
    return common.entry(name=NAME, value=achieved / 1e9, reference=reference / 1e9, goal=0.6, unit="GFLOP/s",
                        device=device, settings=settings)


def main() -> None:
    parser = common.common_args(__doc__.splitlines()[0])
    parser.add_argument("--pgd-steps", type=int, default=4, help="PGD steps in the measured step (paper: 40)")
    parser.add_argument("--chunk", type=int, default=-1,
                        help="examples per double-backprop pass, PGD and update (-1: the training loop's "
                             "default for the device, the default; 0: whole batch)")
    parser.add_argument("--no-compare-whole-batch", dest="compare_whole_batch", action="store_false",
                        help="skip timing the same step with one pass per batch")
    common.run_and_report(run, parser.parse_args())


if __name__ == "__main__":
    main()

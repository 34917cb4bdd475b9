"""L∞ PGD adversarial examples per second: ``robustattr.attacks.pgd`` vs ``torchattacks.PGD``, MNIST settings.

Workload: the MNIST CNN after a brief natural training (``common.trained_mnist_cnn``), real MNIST
test images in batches of 100 (the paper's eval batch), ε = 0.3, 40 steps of 0.01, random start,
cross-entropy loss. Each timed repeat attacks the next 100 test images with both libraries (the
same images for both), so the timed runs also give the adversarial accuracy (AA) at ε = 0.3.
Reference: ``torchattacks.PGD(model, eps=0.3, alpha=0.01, steps=40, random_start=True)``, unmodified.

AA at ε = 0.3 is ~0 for a naturally trained model whatever the attack, so AA is also compared at
ε = 0.1 with 20 steps of 0.01 on ``--aa-images`` test images, where it is not trivially 0. The two
attacks differ in details that do not change the steps' directions: torchattacks ascends the batch
*mean* cross-entropy and clips its random start U(−ε, ε) to [0, 1]; ours ascends the *sum* (the
original's) and does not clip the start (the original's quirk, spec §3.3). Both take sign steps,
project to the ε-ball, then clip to [0, 1]. ``met`` needs ratio ≥ 1 and |ΔAA| ≤ 1 point at both ε.
AA at ε = 0.1 without random start (both sides deterministic) is reported too: it isolates the
effect of the start.

    .venv/bin/python bench/pgd_vs_torchattacks.py --repeats 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torchattacks  # noqa: E402

import common  # noqa: E402
from robustattr import data  # noqa: E402
from robustattr.attacks import pgd  # noqa: E402

NAME = "pgd_vs_torchattacks"
BATCH = 100


class Side:
    """One library's attack on successive batches; counts the correct predictions on its outputs."""

    def __init__(self, attack, model, x, y):
        self.attack, self.model, self.x, self.y = attack, model, x, y
        self.next = 0
        self.correct = 0
        self.attacked = 0

    def __call__(self) -> None:
        lo = (self.next * BATCH) % self.x.shape[0]
        self.next += 1
        xb, yb = self.x[lo : lo + BATCH], self.y[lo : lo + BATCH]
        x_adv = self.attack(xb, yb)
        with torch.no_grad():
            self.correct += int((self.model(x_adv).argmax(1) == yb).sum())
        self.attacked += xb.shape[0]


def accuracy_under(attack, model, x, y) -> float:
    correct = 0
    for lo in range(0, x.shape[0], BATCH):
        xb, yb = x[lo : lo + BATCH], y[lo : lo + BATCH]
        x_adv = attack(xb, yb)
        with torch.no_grad():
            correct += int((model(x_adv).argmax(1) == yb).sum())
    return 100.0 * correct / x.shape[0]


def run(args) -> dict:
    log = common.logger(args.quiet)
    device = torch.device(args.device)
    model, model_info = common.trained_mnist_cnn(device, data_root=args.data_root, log=log)
    split = data.load("mnist", "test", root=args.data_root)
    n_timed = BATCH * (args.repeats + args.warmup)
    x, y = split.batch(slice(0, max(n_timed, args.aa_images)))
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        nat_acc = float((model(x).argmax(1) == y).float().mean()) * 100

    def ours_attack(eps, steps, start=True):
        return lambda xb, yb: pgd(model, xb, yb, epsilon=eps, steps=steps, step_size=0.01, random_start=start,
                                  loss="xent", bounds=(0.0, 1.0))

    def ta_attack(eps, steps, start=True):
        return torchattacks.PGD(model, eps=eps, alpha=0.01, steps=steps, random_start=start)

    torch.manual_seed(0)
    xt, yt = x[:n_timed], y[:n_timed]
    sides = {"ours": Side(ours_attack(0.3, 40), model, xt, yt), "torchattacks": Side(ta_attack(0.3, 40), model, xt, yt)}
    # Warm-up calls attack the first batch(es); the timed repeats the following ones.
    log(f"{NAME}: batch {BATCH}, eps 0.3, 40 steps x 0.01, {args.repeats} timed batches per side")
    for _ in range(args.warmup):
        for side in sides.values():
            side()
    for side in sides.values():  # AA counts the timed batches only
        side.correct = side.attacked = 0
    times = common.interleaved(sides, repeats=args.repeats, warmup=0, device=device, log=log)
    aa03 = {name: 100.0 * side.correct / side.attacked for name, side in sides.items()}
    ours_rate = BATCH / common.median(times["ours"])
    ta_rate = BATCH / common.median(times["torchattacks"])

    xa, ya = x[: args.aa_images], y[: args.aa_images]
    log(f"{NAME}: AA at eps 0.1, 20 steps on {xa.shape[0]} images")
    aa01 = {"ours": accuracy_under(ours_attack(0.1, 20), model, xa, ya),
            "torchattacks": accuracy_under(ta_attack(0.1, 20), model, xa, ya)}
    if args.no_start_check:  # without the random start both are deterministic: only the start differs above
        aa01_plain = {"ours": accuracy_under(ours_attack(0.1, 20, False), model, xa, ya),
                      "torchattacks": accuracy_under(ta_attack(0.1, 20, False), model, xa, ya)}
    gap03 = round(abs(aa03["ours"] - aa03["torchattacks"]), 6)
    gap01 = round(abs(aa01["ours"] - aa01["torchattacks"]), 6)
    settings = {
        "workload": "L-inf PGD, eps 0.3, 40 steps x 0.01, random start, CE, MNIST CNN, batch 100 (MNIST test images)",
        "repeats": args.repeats, "warmup": args.warmup,
        "seconds_ours": times["ours"], "seconds_torchattacks": times["torchattacks"],
        "natural_accuracy_pct": round(nat_acc, 2),
        "aa_eps0.3_40steps_pct": {k: round(v, 2) for k, v in aa03.items()},
        "aa_eps0.3_images": sides["ours"].attacked,
        "aa_eps0.1_20steps_pct": {k: round(v, 2) for k, v in aa01.items()},
        "aa_eps0.1_images": int(xa.shape[0]),
        "aa_eps0.1_20steps_no_random_start_pct": (
            {k: round(v, 2) for k, v in aa01_plain.items()} if args.no_start_check else None),
        "differences": "torchattacks: mean CE, random start clipped to [0,1]; ours: sum CE, start not clipped",
        "torchattacks": torchattacks.__version__,
        **model_info,
    }
    return common.entry(name=NAME, value=ours_rate, reference=ta_rate, goal=1.0, unit="adv. examples/s",
                        device=device, settings=settings, extra_goal="|AA diff| <= 1 point (eps 0.3 and 0.1)",
                        extra_met=gap03 <= 1.0 and gap01 <= 1.0)


def main() -> None:
    parser = common.common_args(__doc__.splitlines()[0])
    parser.add_argument("--aa-images", type=int, default=1000, help="images for the AA comparison at eps 0.1")
    parser.add_argument("--no-start-check", action=argparse.BooleanOptionalAction, default=True,
                        help="also compare AA at eps 0.1 without random start (deterministic on both sides)")
    parser.set_defaults(repeats=5)
    common.run_and_report(run, parser.parse_args())


if __name__ == "__main__":
    main()

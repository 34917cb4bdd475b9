"""Independent check of the strong evaluation (issue 22, item 7): per image, the worst case of three
topK walks (spec §4.2) — one from the clean image, ``--restarts`` (2) from uniform random starts in
the ε-ball ∩ [0, 1] — written from the spec without robustattr's attack code: its own IG over the
full n points, its own top-k mask, its own sign walk on the softplus surrogate ``model(x,
softplus=True)``, label keeping on the ReLU model, SciPy's ``kendalltau``. The worst case is the
minimum over the walks and over every label-keeping iterate, for the top-``eval_k_top``
intersection and Kendall's τ separately; an image with no label-keeping iterate scores (1, 1) (the
paper's convention). Misclassified images are not attacked and not written. MNIST / Fashion-MNIST
(28×28, one channel, [0, 1]).

``--split validation`` attacks the validation images instead (the first 5,000 training images),
where the strong evaluation's budget may be tuned; compare with a strong run made with
``eval_split`` validation.

Settings: an explicit option, else the run's ``eval_attribution_strong.json`` when present, else the
MNIST recipe's values (ε 0.3, step 0.01, 100 steps, IG n 10, k_top 200, eval_k_top 100).

    .venv/bin/python scripts/independent_topk_walks.py RUN --images 100 --out results/independent/mnist-natural
    .venv/bin/python scripts/independent_topk_walks.py --compare RUN/eval_attribution_strong_examples.csv \\
        --out results/independent/mnist-natural

Outputs under --out: ``independent_topk_walks.csv`` (index, intersection, kendall, label_kept, and
each walk's own minima ``walk{j}_intersection``, ``walk{j}_kendall``, walk 0 the clean one),
``independent_topk_walks.json`` (settings, means, seconds per image); with ``--compare``:
``compare_strong.json`` (both means on the common images, the share of images where strong is at
or below the independent attack, and how much the per-image minimum of both lowers strong's means).
"""
import argparse, csv, json, os, time
from pathlib import Path

import numpy as np

RECIPE = {"epsilon": 0.3, "attribution_attack_step_size": 0.01, "attribution_attack_steps": 100,
          "num_IG_steps": 10, "k_top": 200, "eval_k_top": 100}
OPTION = {"epsilon": "eps", "attribution_attack_step_size": "step_size", "attribution_attack_steps": "steps",
          "num_IG_steps": "ig_steps", "k_top": "k_top", "eval_k_top": "eval_k_top"}
CSV_NAME, JSON_NAME, COMPARE_NAME = "independent_topk_walks.csv", "independent_topk_walks.json", "compare_strong.json"
TOL = 1e-6  # float32 CSV values against float64 ones: "at or below" up to rounding


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="a trained run directory (not needed with --compare)")
    p.add_argument("--out", required=True, help="folder for the CSV / JSON outputs")
    p.add_argument("--images", type=int, default=100, help="the first N images of --split (default 100)")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="test (what the item-7 comparison reports) or validation (the first 5,000 training "
                        "images, never trained on: tune the strong evaluation there)")
    p.add_argument("--restarts", type=int, default=2, help="random-start walks besides the clean-image walk (default 2)")
    p.add_argument("--seed", type=int, default=12345, help="numpy seed; image i's starts use default_rng([seed, i])")
    p.add_argument("--eps", type=float); p.add_argument("--step-size", type=float); p.add_argument("--steps", type=int)
    p.add_argument("--ig-steps", type=int); p.add_argument("--k-top", type=int); p.add_argument("--eval-k-top", type=int)
    p.add_argument("--resume", action="store_true", help="keep --out's CSV rows and attack only the images after them")
    p.add_argument("--compare", metavar="STRONG_CSV", help="compare --out's CSV with eval_attribution_strong_examples.csv")
    args = p.parse_args()
    if args.compare is None and args.run is None:
        p.error("give a run directory, or --compare STRONG_CSV")
    needed = [args.compare, str(Path(args.out) / CSV_NAME)] if args.compare else [str(Path(args.run) / "config.json")]
    missing = [f for f in needed if not Path(f).is_file()]
    if missing:
        p.error(f"no such file: {', '.join(missing)}")  # one line, exit 2
    resumed = Path(args.out) / CSV_NAME
    if args.resume and args.compare is None and resumed.is_file():
        with open(resumed, newline="") as f:
            found = next(csv.reader(f), [])
        if found != csv_header(args.restarts):  # appending rows of another width would corrupt the file
            p.error(f"{resumed}: its columns ({len(found)}) are not those of a run with --restarts {args.restarts} "
                    f"({len(csv_header(args.restarts))}); move it aside or drop --resume")
    return args


def csv_header(restarts):
    """The per-image CSV's columns: the worst case over all walks, then each walk's own (walk 0 the clean one)."""
    return (["index", "intersection", "kendall", "label_kept"]
            + [f"walk{j}_{m}" for j in range(restarts + 1) for m in ("intersection", "kendall")])


def settings_for(args):
    """(settings, source of each) — option > the run's strong result file > the recipe's value."""
    strong_file = Path(args.run) / "eval_attribution_strong.json"
    strong = json.loads(strong_file.read_text()) if strong_file.is_file() else {}
    out, source = {}, {}
    for key, default in RECIPE.items():
        given = getattr(args, OPTION[key])
        if given is not None:
            out[key], source[key] = given, "option"
        elif key in strong:
            out[key], source[key] = strong[key], str(strong_file)
        else:
            out[key], source[key] = default, "recipe default"
    return out, source


class Walker:
    """One image at a time. ``x``: (1, 1, 28, 28) float32 in [0, 1]; ``y``: int label."""

    def __init__(self, model, s):
        import torch
        self.torch, self.model = torch, model
        self.eps, self.alpha, self.steps = s["epsilon"], s["attribution_attack_step_size"], s["attribution_attack_steps"]
        self.n, self.k, self.ek = s["num_IG_steps"], s["k_top"], s["eval_k_top"]

    def saliency(self, x, y, softplus, graph=False):
        """(W, 1, 28, 28) → (W, 28·28) IG maps, zero reference, points i/n for i = 1..n, channel-summed
        |IG| normalised to sum 784. ``graph``: keep the graph to x (second order, for the walk)."""
        torch = self.torch
        W = x.shape[0]
        alphas = torch.arange(1, self.n + 1, dtype=x.dtype).view(1, self.n, 1, 1, 1) / self.n
        pts = (alphas * x.unsqueeze(1)).reshape(W * self.n, *x.shape[1:])
        if not graph:
            pts = pts.detach().requires_grad_(True)
        logit = self.model(pts, softplus=softplus)[:, y].sum()  # points are independent: one sum, per-point grads
        g = torch.autograd.grad(logit, pts, create_graph=graph)[0].view(W, self.n, *x.shape[1:]).mean(1)
        s = (x * g).abs().sum(1).reshape(W, -1)
        return s * s.shape[1] / s.sum(1, keepdim=True)

    def metrics(self, s0, s):
        """IN@eval_k_top and Kendall's τ-b (SciPy) of one map against the clean map (both 1-D numpy)."""
        from scipy.stats import kendalltau
        top = lambda a: set(np.argsort(-a, kind="stable")[: self.ek].tolist())
        return len(top(s0) & top(s)) / self.ek, float(kendalltau(s0, s)[0])

    def attack(self, x, y, rng, restarts):
        """→ (min intersection, min Kendall, label_kept, per-walk minima of the intersection, of Kendall)
        over the clean walk (walk 0) and ``restarts`` random starts (walks 1..)."""
        torch = self.torch
        s0 = self.saliency(x, y, softplus=False).detach()
        mask = torch.zeros_like(s0)
        mask[0, torch.from_numpy(np.argsort(-s0[0].numpy(), kind="stable")[: self.k].copy())] = 1.0
        s0 = s0[0].numpy().astype(np.float64)
        starts = [x] + [(x + torch.from_numpy(rng.uniform(-self.eps, self.eps, x.shape)).to(x.dtype)).clamp(0, 1)
                        for _ in range(restarts)]
        xt = torch.cat(starts)  # (W, 1, 28, 28): the walks of this image side by side, independent of each other
        base = x.expand_as(xt)
        walk_in, walk_tau, kept = [1.0] * len(starts), [1.0] * len(starts), False  # each walk's own minima
        for _ in range(self.steps):
            xv = xt.clone().requires_grad_(True)
            d = torch.autograd.grad(-(mask * self.saliency(xv, y, softplus=True, graph=True)).sum(), xv)[0].sign()
            xt = (base + (xt + self.alpha * d - base).clamp(-self.eps, self.eps)).clamp(0, 1).detach()
            with torch.no_grad():
                keep = (self.model(xt).argmax(1) == y).nonzero().flatten()  # label flipped: ineligible, walk goes on
            if len(keep) == 0:
                continue
            kept = True
            maps = self.saliency(xt[keep], y, softplus=False).detach().numpy().astype(np.float64)
            for w, m in zip(keep.tolist(), maps):
                inter, tau = self.metrics(s0, m)
                walk_in[w], walk_tau[w] = min(walk_in[w], inter), min(walk_tau[w], tau)
        return min(walk_in), min(walk_tau), kept, walk_in, walk_tau


def attack_run(args):
    import torch
    from robustattr import data
    from robustattr.checkpoints import load_run_model
    from robustattr.config import load_run_or_config

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    s, source = settings_for(args)
    cfg = load_run_or_config(args.run)
    model, _ = load_run_model(cfg, device="cpu")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x_all, y_all = data.load(cfg.dataset, args.split).batch(slice(0, args.images))
    walker = Walker(model, s)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    rows, seconds, misclassified, first = [], [], 0, 0
    header = csv_header(args.restarts)
    if args.resume and (out / CSV_NAME).is_file():  # an interrupted run: its rows stand, the walk goes on after them
        rows = [(int(r["index"]), float(r["intersection"]), float(r["kendall"]), r["label_kept"] == "1")
                for r in csv.DictReader(open(out / CSV_NAME))]
        first = rows[-1][0] + 1 if rows else 0
        misclassified = first - len(rows)  # the images before `first` that have no row were misclassified
    with open(out / CSV_NAME, "a" if first else "w", newline="") as f:
        w = csv.writer(f)
        if not first:
            w.writerow(header)
        for i in range(first, len(y_all)):
            x, y = x_all[i:i + 1].float(), int(y_all[i])
            with torch.no_grad():
                if int(model(x).argmax(1)) != y:
                    misclassified += 1
                    continue
            began = time.perf_counter()
            inter, tau, kept, walk_in, walk_tau = walker.attack(x, y, np.random.default_rng([args.seed, i]), args.restarts)
            seconds.append(time.perf_counter() - began)
            rows.append((i, inter, tau, kept))
            w.writerow([i, repr(inter), repr(tau), int(kept)] + [repr(v) for pair in zip(walk_in, walk_tau) for v in pair])
            f.flush()
            print(f"image {i}: IN {inter:.3f} Kendall {tau:.4f} label kept {kept} ({seconds[-1]:.1f} s)", flush=True)
    kept_rows = [r for r in rows if r[3]]
    summary = {
        "run": str(args.run), "split": args.split, "images": args.images, "attacked": len(rows), "misclassified": misclassified,
        "num_no_label_keeping": len(rows) - len(kept_rows),
        "walks": {"clean": 1, "uniform_random_start": args.restarts}, "seed": args.seed,
        "settings": s, "settings_source": source,
        "top_k_intersection": float(np.mean([r[1] for r in rows])) if rows else None,
        "kendall": float(np.mean([r[2] for r in rows])) if rows else None,
        "top_k_intersection_dropped": float(np.mean([r[1] for r in kept_rows])) if kept_rows else None,
        "kendall_dropped": float(np.mean([r[2] for r in kept_rows])) if kept_rows else None,
        "seconds_per_image": float(np.mean(seconds)) if seconds else None, "resumed_at_index": first or None,
        "threads": torch.get_num_threads(),
    }
    (out / JSON_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def compare(args):
    out = Path(args.out)
    ind = {int(r["index"]): r for r in csv.DictReader(open(out / CSV_NAME))}
    strong = {int(r["index"]): r for r in csv.DictReader(open(args.compare))
              if str(r.get("correct", "1")).strip().lower() in ("1", "true")}
    common = sorted(set(ind) & set(strong))
    if not common:
        raise SystemExit(f"no common attacked image between {out / CSV_NAME} and {args.compare}")
    result = {"strong_csv": str(args.compare), "independent_csv": str(out / CSV_NAME), "images": len(common),
              "independent_only": len(set(ind) - set(strong)), "strong_only": len(set(strong) - set(ind))}
    for metric in ("intersection", "kendall"):
        a = np.array([float(strong[i][metric]) for i in common])
        b = np.array([float(ind[i][metric]) for i in common])
        both = np.minimum(a, b)
        result[metric] = {
            "strong_mean": float(a.mean()), "independent_mean": float(b.mean()),
            "strong_lower_mean": bool(a.mean() <= b.mean()),
            "share_strong_at_or_below": float(np.mean(a <= b + TOL)),
            "mean_of_per_image_minimum": float(both.mean()),
            "lowered_by": float(a.mean() - both.mean()),
            "lowered_by_at_most_0.01": bool(a.mean() - both.mean() <= 0.01),
        }
    result["criterion_met"] = all(result[m]["strong_lower_mean"] and result[m]["lowered_by_at_most_0.01"]
                                  for m in ("intersection", "kendall"))
    (out / COMPARE_NAME).write_text(json.dumps(result, indent=2) + "\n")
    for m in ("intersection", "kendall"):
        r = result[m]
        print(f"{m}: strong {r['strong_mean']:.4f}, independent {r['independent_mean']:.4f} on {len(common)} images; "
              f"strong at or below on {100 * r['share_strong_at_or_below']:.0f} %; the per-image minimum of both "
              f"lowers strong's mean by {r['lowered_by']:.4f}")
    print(f"criterion (strong lower mean, lowered by <= 0.01, both metrics): {'met' if result['criterion_met'] else 'NOT met'}")


if __name__ == "__main__":
    a = parse()
    compare(a) if a.compare else attack_run(a)

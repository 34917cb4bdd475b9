"""(docs/benchmark.md, MNIST verdict) LGA@1356 minus IG-SUM-NORM on MNIST, with each unit's per-image worst case taken over the strong
evaluation and the independent attack together."""
import csv, numpy as np
def load(strong, ind):
    s = {int(r["index"]): r for r in csv.DictReader(open(strong))}
    i = {int(r["index"]): r for r in csv.DictReader(open(ind))}
    return s, i
R = "/work/main/results"
sl, il = load(f"{R}/benchmark/mnist/at-cost-25/lga/eval_attribution_strong_examples.csv", f"{R}/independent/benchmark-mnist-at-cost-lga/independent_topk_walks.csv")
sr, ir = load(f"{R}/benchmark/mnist/ig-sum-norm/eval_attribution_strong_examples.csv", f"{R}/independent/benchmark-mnist-ig-sum-norm/independent_topk_walks.csv")

def attacked(s):
    return {k for k, r in s.items() if r["correct"] in ("1", "True", "true")}
common = sorted(attacked(sl) & attacked(sr) & set(il) & set(ir))
print("common images", len(common))
rng = np.random.default_rng(0)
for metric in ("intersection", "kendall"):
    a_s = np.array([float(sl[k][metric]) for k in common]); b_s = np.array([float(sr[k][metric]) for k in common])
    a_c = np.minimum(a_s, [float(il[k][metric]) for k in common]); b_c = np.minimum(b_s, [float(ir[k][metric]) for k in common])
    for name, a, b in (("strong only", a_s, b_s), ("min(strong, independent)", a_c, b_c)):
        d = a - b
        boots = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
        print(f"{metric:12s} {name:26s} LGA {a.mean():.4f} IGSN {b.mean():.4f} diff {d.mean():+.4f} [{np.percentile(boots,2.5):+.4f}, {np.percentile(boots,97.5):+.4f}]")

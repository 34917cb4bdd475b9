"""Strong-portfolio variants with the rank_kendall member, on validation images, against the
independent attack's CSV (issue 22, item 7, ninth pass: docs/attribution-evaluation.md).

usage: kendall_member_variants.py RUN IND_CSV OUT_JSON VARIANT [VARIANT ...] [--images N]
VARIANT: base | a ';'-separated list of member=weight (0 takes the member out), e.g.
'topK_random_start=0;rank_kendall=3' — the portfolio is rebuilt from the registry at share 0.9.
"""
import argparse, csv, dataclasses, json, os, time
import numpy as np
import torch

from robustattr import data
from robustattr.attacks import AttackSettings
from robustattr.attacks import strong_attribution as sa
from robustattr.attacks.members import MEMBERS, register_member
from robustattr.checkpoints import load_run_model
from robustattr.config import load_run_or_config

torch.set_num_threads(1)
p = argparse.ArgumentParser()
p.add_argument("run"); p.add_argument("ind"); p.add_argument("out"); p.add_argument("variants", nargs="+")
p.add_argument("--images", type=int, default=40); p.add_argument("--batch", type=int, default=20)
p.add_argument("--eps", type=float, default=0.3); p.add_argument("--k-top", type=int, default=200)
a = p.parse_args()

cfg = load_run_or_config(a.run)
model, _ = load_run_model(cfg, device="cpu"); model.eval()
for q in model.parameters():
    q.requires_grad_(False)
x_all, y_all = data.load(cfg.dataset, "validation").batch(slice(0, a.images))
S = AttackSettings(epsilon=a.eps, step_size=0.01, steps=100, n_steps=10, k_top=a.k_top, eval_k_top=100, method="topK",
                   budget="standard", seed=cfg.random_seed, chunk_size=10)
shipped = dict(MEMBERS)


def variant(name):
    for m in shipped.values():
        register_member(m, replace=True)
    if name != "base":
        for item in name.split(";"):
            member, weight = item.split("=")
            w = float(weight)
            kind = shipped[member]
            register_member(dataclasses.replace(kind, in_portfolio=w > 0, weight=w if w > 0 else kind.weight), replace=True)
    return sa.portfolio(2, None, 0.9)


def cost(members, n=10, t_dir=0.817, t_map=0.303):
    """Moves per iteration in faithful-move units (bench: direction 0.817 s, map 0.303 s at n=20)."""
    c = 0.0
    for m in members:
        pts = m.direction_n_steps or n
        d = 0.0 if m.kind.objective is None else t_dir * pts / n
        c += (d + t_map) / (t_dir + t_map) / m.stride
    return c


results = json.load(open(a.out)) if os.path.exists(a.out) else {}
for name in a.variants:
    members = variant(name)
    began = time.perf_counter()
    rows = {}
    for s0 in range(0, a.images, a.batch):
        x, y = x_all[s0:s0 + a.batch].float(), y_all[s0:s0 + a.batch]
        ids = list(range(s0, s0 + x.shape[0]))
        r = sa.strong_attribution_attack(model, x, y, S, example_ids=ids)
        for i, k in enumerate(ids):
            if bool(r.attacked[i]):
                rows[k] = (float(r.intersection[i]), float(r.kendall[i]),
                           {m: float(r.member_values["kendall"][j, i]) for j, m in enumerate(r.members)},
                           {m: float(r.member_values["intersection"][j, i]) for j, m in enumerate(r.members)})
    secs = time.perf_counter() - began
    ind = {int(r["index"]): r for r in csv.DictReader(open(a.ind))}  # read here: it may be written meanwhile
    common = sorted(set(rows) & set(ind))
    res = {"members": [m.name for m in members], "strides": [m.stride for m in members],
           "cost_extra_walks": cost(members[1:]), "seconds": secs, "images": len(common)}
    for mi, metric in enumerate(("intersection", "kendall")):
        s = np.array([rows[k][mi] for k in common]); b = np.array([float(ind[k][metric]) for k in common])
        res[metric] = {"strong": s.mean(), "independent": b.mean(), "lowered_by": s.mean() - np.minimum(s, b).mean(),
                       "share_at_or_below": float(np.mean(s <= b + 1e-6))}
    res["member_kendall"] = {m: float(np.mean([rows[k][2][m] for k in common])) for m in rows[common[0]][2]}
    res["member_intersection"] = {m: float(np.mean([rows[k][3][m] for k in common])) for m in rows[common[0]][3]}
    res["per_image"] = {k: rows[k][:2] for k in sorted(rows)}  # (intersection, kendall): recompare later
    results[name] = res
    print(name, json.dumps({k: v for k, v in res.items() if not k.startswith("member")}, default=float), flush=True)
    print("  per member kendall", json.dumps(res["member_kendall"]), flush=True)
    json.dump(results, open(a.out, "w"), indent=1, default=float)

"""Run every benchmark, write ``bench/results/latest.json`` (a list of entries) and print the table.

Each benchmark runs in its own process (fresh allocator, its own peak memory), one after the
other, with the thread count of this process's environment. A benchmark that fails is reported
and the others still run; the exit status is 1 if any failed.

    .venv/bin/python bench/run_all.py                      # all four, the sizes of `make bench`
    .venv/bin/python bench/run_all.py --only pgd_vs_torchattacks --device cpu

``bench/train_step_cost.py`` (seconds per training step of every objective at the paper settings,
~2-3 minutes on a 2-core CPU) is not part of this run; start it on its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import common  # noqa: E402

#: name -> extra arguments (the sizes that keep `make bench` under ~10 minutes on a 2-core CPU)
BENCHMARKS: dict[str, list[str]] = {
    "ig_vs_captum": ["--repeats", "3"],
    "attack_batched_vs_single": ["--repeats", "3", "--steps", "5", "--ig-steps", "50", "--batch", "16",
                                 "--single-images", "4", "--chunk", "2"],
    "ig_norm_step_utilisation": ["--repeats", "3", "--pgd-steps", "2"],
    "pgd_vs_torchattacks": ["--repeats", "5", "--aa-images", "1000"],
    "strong_vs_faithful": ["--repeats", "3", "--batch", "16", "--steps", "26", "--ig-steps", "20"],  # 26: a whole cycle of the strides
    "objective_step_cost": ["--repeats", "1", "--warmup", "0"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "latest.json")
    args = parser.parse_args()

    results, failed = [], []
    for name in args.only:
        out = common.RESULTS_DIR / f"{name}.json"
        cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--device", args.device, "--out", str(out),
               *BENCHMARKS[name]]
        if args.data_root:
            cmd += ["--data-root", args.data_root]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd)
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            print(f"== {name} FAILED (exit {proc.returncode}) after {seconds:.0f} s", flush=True)
            failed.append(name)
            continue
        entry = json.loads(out.read_text())
        entry["settings"]["benchmark_wall_seconds"] = round(seconds, 1)
        results.append(entry)
        print(f"== {name}: {seconds:.0f} s", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(common.format_table(results))
    print(f"\nwrote {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

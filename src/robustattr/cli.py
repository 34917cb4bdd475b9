"""Command line: parses arguments and calls the library. Nothing else lives here.

Exit status: 0 success, 2 bad input (config, path, dataset, a symbolic link where robustattr keeps
its own file: one line, no traceback), 1 anything else (an OS error, permission denied, a read-only
or full disk, whatever the command: one line naming the path).
Results go to standard output as JSON (or the requested table format); progress and logs to stderr.

Under ``torchrun``, ``train`` and ``eval pgd|attribution`` join the launch's process group
(``robustattr.distributed``); only rank 0 prints results and INFO logs, and an error names its rank.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from robustattr.errors import BAD_PATH_ERRNOS, FileSystemError, TrainingError, UserInputError

from robustattr.data.catalog import DATASETS

DATASET_NAMES = tuple(DATASETS)  # the catalog's; a new entry is a new choice


def _print_json(obj: object) -> None:
    from robustattr import distributed

    if distributed.is_main():  # under torchrun every rank returns the result; one prints it
        print(json.dumps(obj, indent=2, sort_keys=False, default=str))


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from robustattr import data

    _print_json(data.fetch(args.name, root=args.root, source_dir=args.source_dir))
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from robustattr import data

    _print_json(data.describe(args.name, root=args.root))
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from robustattr.config import load_config

    _print_json(load_config(args.config, args.set).to_dict())
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from robustattr.config import load_config
    from robustattr.training import train

    cfg = load_config(args.config, args.set)
    _print_json(train(cfg, overwrite=args.overwrite))
    return 0


def _cmd_eval_pgd(args: argparse.Namespace) -> int:
    from robustattr.config import load_run_or_config
    from robustattr.evaluation import evaluate_pgd

    _print_json(evaluate_pgd(load_run_or_config(args.target, args.set)))
    return 0


def _cmd_eval_attribution(args: argparse.Namespace) -> int:
    from robustattr.config import load_run_or_config
    from robustattr.evaluation import evaluate_attribution

    overrides = list(args.set)
    if args.target_box is not None:
        overrides.append(f"attribution_attack_target={json.dumps(args.target_box)}")
    _print_json(evaluate_attribution(load_run_or_config(args.target, overrides)))
    return 0


def _cmd_eval_certify(args: argparse.Namespace) -> int:
    from robustattr.config import load_run_or_config
    from robustattr.evaluation.certify import evaluate_certificate

    _print_json(evaluate_certificate(load_run_or_config(args.target, args.set)))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from robustattr.reports import report

    print(report(args.runs, args.format), end="")
    return 0


def _cmd_figure(args: argparse.Namespace) -> int:
    from robustattr.pipelines.figure import write_convergence, write_figure

    if args.convergence:
        if args.out and len(args.runs) > 1:
            raise UserInputError("--out names one file: give one RUN_DIR with --convergence --out")
        for run in args.runs:
            print(write_convergence(run, args.out))
        return 0
    print(write_figure(args.runs, index=args.index, out=args.out, curves=args.curves, overrides=args.set,
                       attack=args.attack))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from robustattr.pipelines.demo import run_demo

    print(run_demo(args.out, data_root=args.root), end="")
    return 0


def _cmd_repro(args: argparse.Namespace) -> int:
    from robustattr.pipelines.repro import run_repro

    print(run_repro(args.dataset, methods=args.methods, recipes=args.recipes, results=args.results,
                    data_root=args.root, force=args.force), end="")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from robustattr.pipelines.benchmark import run_benchmark

    print(run_benchmark(args.dataset, methods=args.methods, recipes=args.recipes, results=args.results,
                        data_root=args.root, force=args.force, at_cost=args.at_cost), end="")
    return 0


def _box(text: str) -> list[int]:
    try:
        box = [int(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a box; give ROW0,COL0,ROW1,COL1 (pixel indices, end exclusive)"
        )
    return box


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustattr",
        description="Train and evaluate image classifiers with robust Integrated-Gradients attributions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    from robustattr import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_set(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--set", action="append", default=[], metavar="K=V",
            help="override a config key (value parsed as JSON, else a string); repeatable",
        )
        return p

    data_p = sub.add_parser("data", help="fetch and inspect datasets")
    data_sub = data_p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="download/prepare a dataset into the cache")
    fetch.add_argument("name", choices=DATASET_NAMES)
    fetch.add_argument("--root", help="cache folder (default $ROBUSTATTR_DATA or ~/.cache/robustattr)")
    fetch.add_argument(
        "--source-dir", help="folder with raw files you already have (IDX files, GTSRB pickles, 17flowers.tgz)")
    fetch.set_defaults(func=_cmd_data_fetch)
    info = data_sub.add_parser("info", help="where each dataset is, its sizes and checksums")
    info.add_argument("name", nargs="?", choices=DATASET_NAMES)
    info.add_argument("--root", help="cache folder")
    info.set_defaults(func=_cmd_data_info)

    config_p = sub.add_parser("config", help="validate configs")
    config_sub = config_p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    from robustattr.config import describe_keys

    check = with_set(config_sub.add_parser(
        "check", help="validate and print the resolved config",
        epilog=describe_keys(), formatter_class=argparse.RawDescriptionHelpFormatter,
    ))
    check.add_argument("config")
    check.set_defaults(func=_cmd_config_check)

    train_p = with_set(sub.add_parser("train", help="train a model from a config"))
    train_p.add_argument("config")
    train_p.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing run in model_dir (default: refuse unless continue_train)",
    )
    train_p.set_defaults(func=_cmd_train, distributed=True)

    eval_p = sub.add_parser("eval", help="evaluate a trained run")
    eval_sub = eval_p.add_subparsers(dest="eval_command", required=True, metavar="KIND")
    pgd = with_set(eval_sub.add_parser("pgd", help="natural and PGD accuracy -> eval_pgd.json"))
    pgd.add_argument("target", metavar="CONFIG|RUN_DIR")
    pgd.set_defaults(func=_cmd_eval_pgd, distributed=True)
    attr = with_set(eval_sub.add_parser(
        "attribution", help="attribution robustness (IN, CO) -> eval_attribution.json"))
    attr.add_argument("target", metavar="CONFIG|RUN_DIR")
    attr.add_argument(
        "--target-box", type=_box, metavar="R0,C0,R1,C1",
        help="target region for attribution_attack_method=target",
    )
    attr.set_defaults(func=_cmd_eval_attribution, distributed=True)
    certify = with_set(eval_sub.add_parser(
        "certify", help="sparsified-SmoothGrad top-k certificate and an l2 attack on it -> eval_certify.json"))
    certify.add_argument("target", metavar="CONFIG|RUN_DIR")
    certify.set_defaults(func=_cmd_eval_certify)

    report_p = sub.add_parser("report", help="the paper's Table 1 layout for a set of runs")
    report_p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    report_p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    report_p.set_defaults(func=_cmd_report)

    figure_p = with_set(sub.add_parser(
        "figure", help="image / IG map / attacked image / IG map, one row per run (and training curves)"))
    figure_p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    figure_p.add_argument("--index", type=int, default=None,
                          help="test image index (default: the original notebook's image for the dataset)")
    figure_p.add_argument("--out", help="PNG path (default: RUN_DIR/figure_attack_<index>.png of the first run)")
    figure_p.add_argument("--attack", choices=("strong", "faithful"), default="strong",
                          help="strong (default): the perturbation of the lowest Kendall tau over the strong "
                          "evaluation's attacks; faithful: the run's configured attack")
    figure_p.add_argument("--curves", action="store_true",
                          help="draw training curves from metrics.jsonl instead of the attack panel")
    figure_p.add_argument("--convergence", action="store_true",
                          help="instead: the strong evaluation's running worst case against steps and walks, "
                          "from RUN_DIR/eval_attribution_strong.json (default RUN_DIR/figure_convergence.png)")
    figure_p.set_defaults(func=_cmd_figure)

    demo_p = sub.add_parser("demo", help="MNIST end to end: NATURAL vs IG-NORM, table and figure")
    demo_p.add_argument("--out", default="runs/demo", help="folder for the demo's runs (default runs/demo)")
    demo_p.add_argument("--root", help="dataset cache folder")
    demo_p.set_defaults(func=_cmd_demo)

    repro_p = _unit_pipeline(sub, "repro", "Table 1 for one dataset: run or resume its recipes, then the report",
                             "configs/repro", "results", "in the order natural madry ig-norm ig-sum-norm")
    repro_p.set_defaults(func=_cmd_repro)

    bench_p = _unit_pipeline(sub, "benchmark", "every method at one budget rule and one evaluation, cost recorded; "
                             "run or resume the dataset's units, then the report", "configs/benchmark",
                             "results/benchmark", "in the objectives registry's order")
    bench_p.add_argument("--at-cost", action="store_true",
                         help="instead of the units: each finished unit's recipe trained for only as many steps as "
                              "fit 25%% of IG-SUM-NORM's training cost, with the strong evaluation (docs/benchmark.md)")
    bench_p.set_defaults(func=_cmd_benchmark)
    return parser


def _unit_pipeline(sub: Any, name: str, help_text: str, recipes: str, results: str,
                   order: str) -> argparse.ArgumentParser:
    """A subcommand that runs a folder of unit recipes (repro, benchmark): the same options."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("dataset", help="a folder of --recipes, e.g. mnist or fashion-mnist")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help=f"units to run (default: every method with a recipe, {order})")
    p.add_argument("--recipes", default=recipes, help=f"recipe folder (default {recipes})")
    p.add_argument("--results", default=results, help=f"artifact folder (default {results})")
    p.add_argument("--force", action="store_true", help="redo units whose results are already there")
    p.add_argument("--root", help="dataset cache folder")
    return p


def _quiet_other_ranks(rank: int, verbose: bool) -> None:
    """Under torchrun: tag log lines with the rank; ranks other than 0 log warnings only."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(f"%(levelname)s [rank {rank}] %(name)s: %(message)s"))
    if rank != 0 and not verbose:
        root.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    prefix = "robustattr: error: "
    try:
        if getattr(args, "distributed", False):
            from robustattr import distributed

            with distributed.session() as several_ranks:
                if several_ranks:
                    prefix = f"robustattr [rank {distributed.rank()}/{distributed.world_size()}]: error: "
                    _quiet_other_ranks(distributed.rank(), args.verbose)
                try:
                    return args.func(args)
                except distributed.DistError as exc:
                    # A peer died mid-collective: say so in one line; torchrun names the rank that failed.
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    print(f"{prefix}another rank of this launch failed or stopped answering ({first})",
                          file=sys.stderr)
                    return 1
        return args.func(args)
    except UserInputError as exc:
        print(f"{prefix}{exc}", file=sys.stderr)
        return 2
    except (TrainingError, FileSystemError) as exc:
        print(f"{prefix}{exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:
        if exc.filename is None:  # the system failed us (out of memory for a thread, ...): still one line
            print(f"{prefix}{exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"{prefix}{exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2 if exc.errno in BAD_PATH_ERRNOS else 1  # a wrong path is bad input; the rest the system's refusal
    except KeyboardInterrupt:
        print("robustattr: interrupted", file=sys.stderr)
        return 130

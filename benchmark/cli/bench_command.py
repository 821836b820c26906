"""``bench``: time every training stage on this device and project the paper's jobs (read by ``sweep --plan``)."""

from __future__ import annotations

import argparse

from benchmark.cli.arguments import PROFILE_NAMES, print_json


def cmd_bench(args: argparse.Namespace) -> None:
    import torch

    from benchmark.orchestration.bench import bench_path, format_bench, run_bench

    result = run_bench(args.profile, args.device)
    path = bench_path(result.profile, torch.device(result.device))
    print_json(result.as_dict() | {"saved_to": str(path)}) if args.json else print(format_bench(result, path))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``bench``."""
    p = sub.add_parser("bench", help="time every training stage on this device at a profile's sizes and project "
                       "the paper's jobs (saved for sweep --plan)")
    p.add_argument("--profile", default="paper", help=f"{PROFILE_NAMES} (default paper)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

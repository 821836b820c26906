"""``run`` (one method on one setup) and ``probe`` (linear probes of frozen backbones)."""

from __future__ import annotations

import argparse

from benchmark.cli.arguments import (
    PROFILE_NAMES,
    STORAGE_HELP,
    common,
    names,
    print_json,
    profile_options,
    profile_overrides,
)


def cmd_run(args: argparse.Namespace) -> None:
    from benchmark.orchestration.run import run_method
    from benchmark.reporting.report import print_run

    method_sets, profile_sets = profile_overrides(args, method_sets=True)
    record = run_method(args.method, args.setup, seed=args.seed, profile=args.profile, overrides=method_sets,
                        profile_overrides=profile_sets, device=args.device, storage_url=args.storage)
    print_json(record) if args.json else print_run(record)


def cmd_probe(args: argparse.Namespace) -> None:
    from benchmark.orchestration.probe_runs import PROBE_BACKBONES, run_probes
    from benchmark.reporting.report import print_probes

    backbones = names(args.backbones, "--backbones") if args.backbones is not None else PROBE_BACKBONES
    records = run_probes(args.setup, backbones, seed=args.seed, profile=args.profile,
                         profile_overrides=profile_overrides(args)[1], device=args.device, storage_url=args.storage,
                         split=args.split)
    print_json(records) if args.json else print_probes(records)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``run`` and ``probe``."""
    p = sub.add_parser("run", help="adapt with one method on one setup and evaluate on the target test split")
    p.add_argument("--method", required=True)
    p.add_argument("--setup", required=True)
    p.add_argument("--profile", help=f"{PROFILE_NAMES} (default: the setup's)")
    profile_options(p, method_sets=True)
    p.add_argument("--storage", help=STORAGE_HELP)
    common(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("probe", help="linear probes of frozen backbones on a setup's target (the paper's Table 3)")
    p.add_argument("--setup", required=True)
    p.add_argument("--backbones", help="comma-separated subset of random, imagenet, source and the self-supervised "
                   "objectives (default all)")
    p.add_argument("--split", default="test", choices=("test", "val"),
                   help="target split scored: test (reported, stored) or val (synthetic targets only: for choosing "
                        "settings; printed, never stored)")
    p.add_argument("--profile", help=f"{PROFILE_NAMES} (default: the setup's)")
    profile_options(p)
    p.add_argument("--storage", help=STORAGE_HELP)
    common(p)
    p.set_defaults(func=cmd_probe)

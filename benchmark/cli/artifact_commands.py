"""``source``, ``calibrate`` and ``pretrain``: the artifacts runs start from, trained now or fetched from cache."""

from __future__ import annotations

import argparse

from benchmark.cli.arguments import (
    PROFILE_NAMES,
    common,
    numerics_option,
    print_json,
    profile_options,
    profile_overrides,
    say,
)


def cmd_source(args: argparse.Namespace) -> None:
    from benchmark.config.devices import resolve_device
    from benchmark.orchestration.profile_resolution import resolve_profile
    from benchmark.services.source import get_source_model

    profile = resolve_profile(args.profile, profile_overrides(args)[1])
    source = get_source_model(args.dataset, profile, args.seed, resolve_device(args.device))
    if args.json:
        print_json({k: v for k, v in source.info.items()} | {"artifact": str(source.path)})
        return
    state = "trained now" if source.info["built_now"] else "cached"
    print(f"source model {args.dataset} (profile {args.profile}, seed {args.seed}, {state}): {source.path}")
    print(f"source test accuracy {source.info['source_test']['accuracy']:.2f}%")


def cmd_calibrate(args: argparse.Namespace) -> None:
    from benchmark.reporting.report import print_calibration
    from benchmark.services.calibration import calibrate

    result = calibrate(args.setup, args.seed, args.device, numerics=args.numerics or "native")
    print_json(result) if args.json else print_calibration(result)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from benchmark.config.devices import resolve_device
    from benchmark.orchestration.profile_resolution import resolve_profile
    from benchmark.services.pretrain import get_pretrained_backbone
    from methods.ssl.ssl_registry import get_ssl

    get_ssl(args.ssl)
    profile = resolve_profile(args.profile, profile_overrides(args)[1])
    pretrained = get_pretrained_backbone(args.ssl, args.dataset, profile, args.seed, resolve_device(args.device))
    if args.json:
        print_json(pretrained.info | {"artifact": str(pretrained.path)})
        return
    info = pretrained.info
    state = "trained now" if info["built_now"] else "cached"
    print(f"{args.ssl} backbone on {args.dataset} (profile {args.profile}, seed {args.seed}, {state}): "
          f"{pretrained.path}")
    last = info["history"][-1] if info["history"] else {}
    collapse = info["collapse"]
    say(f"final loss {collapse['final_loss']:.4f} (ln P = {collapse['ln_p']:.3f}); prototype usage entropy "
        f"{last.get('usage_entropy', 0.0):.3f} nats, {last.get('prototypes_used', 0)} prototypes used")
    if collapse["collapsed"]:
        say("COLLAPSED: " + "; ".join(collapse["reasons"]))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``source``, ``calibrate`` and ``pretrain``."""
    p = sub.add_parser("source", help="train (or fetch from cache) the source model of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--profile", default="quick", help=f"{PROFILE_NAMES} (default quick)")
    profile_options(p)
    common(p)
    p.set_defaults(func=cmd_source)
    p = sub.add_parser("calibrate", help="the synthetic benchmark's three calibration numbers")
    p.add_argument("--setup", default="synth")
    numerics_option(p)
    common(p)
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("pretrain", help="self-supervised pretraining of a backbone on a dataset's train images")
    p.add_argument("--ssl", required=True, help="self-supervised objective (one of those `list` shows under profiles)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--profile", default="quick", help=f"{PROFILE_NAMES} (default quick)")
    profile_options(p)
    common(p)
    p.set_defaults(func=cmd_pretrain)

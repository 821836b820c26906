"""``list`` (what the harness knows) and ``data`` (prepare, verify or show a dataset cache)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.cli.arguments import print_json, say
from benchmark.config.errors import UserError


def _profile_summary(profile: Any) -> dict[str, Any]:
    """What ``list`` shows of a profile: its scale, the resolved stems, each objective's prototypes and epochs and
    the source recipe."""
    from dataclasses import asdict

    from methods.ssl.ssl_registry import ssl_names, ssl_recipe

    return {
        "name": profile.name, "arch": profile.arch, "width": profile.width, "image_size": profile.image_size,
        "stem": profile.stem, "ssl_stem": profile.ssl_stem or profile.stem, "imagenet_init": profile.imagenet_init,
        "precision": profile.precision, "channels_last": profile.channels_last, "compile": profile.compile,
        "source": asdict(profile.source),
        "ssl": {name: {"prototypes": ssl_recipe(profile, name).prototypes, "epochs": ssl_recipe(profile, name).epochs}
                for name in ssl_names()},
    }


def _list_payload() -> dict[str, Any]:
    """Everything ``list`` shows: methods (with settings and default hyperparameters), setups, datasets,
    backbones, profiles and experiments."""
    from benchmark.config.profiles import PROFILES
    from benchmark.config.setups import SETUPS
    from benchmark.orchestration.experiments import EXPERIMENTS
    from benchmark.orchestration.profile_resolution import method_source
    from datasets.registry import dataset_names
    from methods.core.models import ARCHS, HEADS, STEMS, bottleneck_width
    from methods.registry import available

    def network(name: str, profile: Any) -> dict[str, Any]:
        source = method_source(profile, name).source
        return {"source_recipe": source.name, "head": source.head, "bottleneck": bottleneck_width(source.head)}

    methods = [
        {
            "name": name,
            "setting": cls.setting.value,
            "module": cls.__module__,
            "hparams": {k: hp.default for k, hp in cls.hparams_spec.items()},
            "network": {profile.name: network(name, profile) for profile in PROFILES.values()},
        }
        for name, cls in sorted(available().items())
    ]
    setups = [
        {"name": s.name, "source": s.source, "target": s.target, "profile": s.profile, "paper": s.paper}
        for s in SETUPS.values()
    ]
    return {
        "methods": methods,
        "setups": setups,
        "datasets": dataset_names(),
        "backbones": {"archs": list(ARCHS), "stems": list(STEMS), "heads": list(HEADS)},
        "profiles": [_profile_summary(profile) for profile in PROFILES.values()],
        "experiments": [{"name": e.name, "title": e.title, "paper_setups": list(e.paper_setups)}
                        for e in EXPERIMENTS.values()],
    }


def cmd_list(args: argparse.Namespace) -> None:
    payload = _list_payload()
    if args.json:
        print_json(payload)
        return
    print("methods:")
    for m in payload["methods"]:
        hp = ", ".join(f"{k}={v}" for k, v in m["hparams"].items()) or "-"
        say(f"  {m['name']:<16} {m['setting']:<7} {hp}   [{m['module']}]", " " * 27)
    print("setups:")
    for s in payload["setups"]:
        paper = ", paper" if s["paper"] else ""
        say(f"  {s['name']:<12} {s['source']} -> {s['target']}  (profile {s['profile']}{paper})", " " * 15)
    say("datasets: " + ", ".join(payload["datasets"]))
    backbones = payload["backbones"]
    say(f"backbones: {', '.join(backbones['archs'])}; stems: {', '.join(backbones['stems'])}; "
        f"heads: {', '.join(backbones['heads'])}")
    print("profiles:")
    for p in payload["profiles"]:
        ssl = ", ".join(f"{name} P={v['prototypes']} {v['epochs']} ep" for name, v in p["ssl"].items())
        say(f"  {p['name']:<6} {p['arch']} w{p['width']} {p['image_size']} px, stem {p['stem']} (SSL {p['ssl_stem']}), "
            f"source recipe {p['source']['name']} ({p['source']['epochs']} ep, head {p['source']['head']}), "
            f"{ssl}; {p['precision']}", " " * 9)
    print("experiments:")
    for e in payload["experiments"]:
        say(f"  {e['name']:<8} {e['title']}", " " * 11)


def cmd_data(args: argparse.Namespace) -> None:
    from datasets import registry
    from datasets.cache import load_split, verify_cache

    if args.data_command == "prepare":
        out = registry.prepare(args.dataset, args.raw, skip_bad=args.skip_bad, split_seed=args.split_seed)
        report = verify_cache(out, dataset=args.dataset)
        print(f"prepared {args.dataset} -> {out}")
        for split, info in report["splits"].items():
            print(f"  {split}: {info['n']} images")
    elif args.data_command == "verify":
        if args.dataset not in registry.dataset_names():
            raise UserError(f"unknown dataset {args.dataset!r}; known: {', '.join(registry.dataset_names())}")
        report = registry.verify(args.dataset)
        if args.json:
            print_json(report)
        else:
            print(f"{args.dataset}: cache verified ({registry.cache_dir(args.dataset)})")
            for split, info in report["splits"].items():
                counts = ", ".join(f"{k} {v}" for k, v in info["class_counts"].items())
                say(f"  {split}: {info['n']} images ({counts})", "    ")
    elif args.data_command == "show":
        from benchmark.reporting.outputs import output_file
        from datasets.show import draw_class_grid

        out = output_file(Path(args.out))
        split = load_split(registry.ensure(args.dataset), args.split)
        draw_class_grid(split.images, split.labels, out, per_class=args.per_class,
                        title=f"{args.dataset} ({args.split})")
        print(f"wrote {args.out}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``list`` and ``data {prepare,verify,show}``."""
    p = sub.add_parser("list", help="methods, setups, datasets, backbones, profiles, experiments")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)
    data = sub.add_parser("data", help="prepare, verify or show a dataset cache")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("prepare", help="raw release (or synthetic generator) -> verified cache")
    p.add_argument("dataset")
    p.add_argument("--raw", help="raw release folder (default $FERBENCH_DATA/DATASET)")
    p.add_argument("--skip-bad", action="store_true", help="skip bad records; they are listed in the manifest")
    p.add_argument("--split-seed", type=int, default=0, help="seed of generated splits (ExpW); default 0")
    p = dsub.add_parser("verify", help="re-hash a prepared cache against its manifest")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true")
    p = dsub.add_parser("show", help="a PNG grid of samples per class")
    p.add_argument("dataset")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--out", required=True, help="output PNG path")
    data.set_defaults(func=cmd_data)

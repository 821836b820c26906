"""Command line: ``python -m benchmark {list,data,source,calibrate,run,pretrain,probe,results
[show,export,import],sweep,bench,leaderboard,figures}``
(contract: docs/PROTOCOL.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmark.config.errors import UserError, interrupt_on_sigterm
from benchmark.config.numerics import reexec_if_portable
from benchmark.config.options import check_options
from datasets.errors import DatasetError


def _parse_sets(pairs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``--set`` pairs as (method hyperparameters, profile overrides): a dotted key (``source.epochs``,
    ``ssl.swav.epochs``, ``profile.precision``) sets a profile field, a plain one (``q``) a hyperparameter."""
    method: dict[str, str] = {}
    profile: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        if "." in key:
            profile[key.removeprefix("profile.")] = value.strip()
        else:
            method[key] = value.strip()
    return method, profile


def _profile_overrides(args: argparse.Namespace, *, method_sets: bool = False) -> tuple[dict[str, str], dict[str, Any]]:
    """(method hyperparameters, profile overrides) of a command: ``--profile-file`` first, then ``--set``; a
    command without hyperparameters (``method_sets`` False) refuses plain ``--set`` keys."""
    from benchmark.config.overrides import read_profile_file

    method, profile = _parse_sets(args.set)
    if method and not method_sets:
        raise UserError(f"--set {next(iter(method))}=...: this command takes profile fields only (dotted keys, "
                        "e.g. source.epochs=1, ssl.swav.epochs=200, profile.precision=fp32)")
    from_file = read_profile_file(args.profile_file) if args.profile_file else {}
    profile = {**from_file, **profile}
    if getattr(args, "numerics", None) and (args.numerics != "native" or "numerics" in profile):
        profile["numerics"] = args.numerics  # --numerics wins; native by default adds nothing (native keys unchanged)
    return method, profile


def _names(value: str, option: str) -> tuple[str, ...]:
    """A comma-separated option (``--setups a,b``, ``--experiment table1,fig4``...) as names, blanks dropped; a
    UserError when it names nothing (``--backbones ,``)."""
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise UserError(f"{option} {value!r}: names nothing (expected comma-separated names)")
    return names


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


def _profile_summary(profile: Any) -> dict[str, Any]:
    """What ``list`` shows of a profile: its scale, the resolved stems, each objective's prototypes and epochs,
    the source recipe and CluP's default backbone at that profile."""
    from dataclasses import asdict

    from methods import registry
    from methods.ssl.ssl_registry import ssl_names, ssl_recipe

    return {
        "name": profile.name, "arch": profile.arch, "width": profile.width, "image_size": profile.image_size,
        "stem": profile.stem, "ssl_stem": profile.ssl_stem or profile.stem, "imagenet_init": profile.imagenet_init,
        "precision": profile.precision, "channels_last": profile.channels_last, "compile": profile.compile,
        "source": asdict(profile.source),
        "ssl": {name: {"prototypes": ssl_recipe(profile, name).prototypes, "epochs": ssl_recipe(profile, name).epochs}
                for name in ssl_names()},
        "clup_backbone": registry.resolve_hparams(registry.get("clup"), {}, {}, profile)["backbone"],
    }


def _list_payload() -> dict[str, Any]:
    """Everything ``list`` shows: methods (with settings and default hyperparameters), setups, datasets,
    backbones, profiles and experiments."""
    from benchmark.config.profiles import PROFILES
    from benchmark.config.setups import SETUPS
    from benchmark.orchestration.experiments import EXPERIMENTS
    from datasets.registry import dataset_names
    from methods.core.models import ARCHS, HEADS, STEMS
    from methods.registry import available

    methods = [
        {
            "name": name,
            "setting": cls.setting.value,
            "module": cls.__module__,
            "hparams": {k: hp.default for k, hp in cls.hparams_spec.items()},
        }
        for name, cls in sorted(available().items())
    ]
    setups = [
        {"name": s.name, "source": s.source, "target": s.target, "profile": s.profile, "paper": s.paper}
        for s in SETUPS.values()
    ]
    payload = {
        "methods": methods,
        "setups": setups,
        "datasets": dataset_names(),
        "backbones": {"archs": list(ARCHS), "stems": list(STEMS), "heads": list(HEADS)},
        "profiles": [_profile_summary(profile) for profile in PROFILES.values()],
        "experiments": [{"name": e.name, "title": e.title, "paper_setups": list(e.paper_setups)}
                        for e in EXPERIMENTS.values()],
    }
    return payload


def cmd_list(args: argparse.Namespace) -> None:
    from methods.core.models import ARCHS, HEADS, STEMS

    payload = _list_payload()
    if args.json:
        _print_json(payload)
        return
    print("methods:")
    for m in payload["methods"]:
        hp = ", ".join(f"{k}={v}" for k, v in m["hparams"].items()) or "-"
        print(f"  {m['name']:<16} {m['setting']:<7} {hp}   [{m['module']}]")
    print("setups:")
    for s in payload["setups"]:
        print(f"  {s['name']:<12} {s['source']} -> {s['target']}  (profile {s['profile']}{', paper' if s['paper'] else ''})")
    print("datasets: " + ", ".join(payload["datasets"]))
    print("backbones: " + ", ".join(ARCHS) + "; stems: " + ", ".join(STEMS) + "; heads: " + ", ".join(HEADS))
    print("profiles:")
    for p in payload["profiles"]:
        ssl = ", ".join(f"{name} P={v['prototypes']} {v['epochs']} ep" for name, v in p["ssl"].items())
        print(f"  {p['name']:<6} {p['arch']} w{p['width']} {p['image_size']} px, stem {p['stem']} (SSL {p['ssl_stem']}), "
              f"source recipe {p['source']['name']} ({p['source']['epochs']} ep, head {p['source']['head']}), "
              f"{ssl}; CluP backbone {p['clup_backbone']}; {p['precision']}")
    print("experiments:")
    for e in payload["experiments"]:
        print(f"  {e['name']:<8} {e['title']}")


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
            _print_json(report)
        else:
            print(f"{args.dataset}: cache verified ({registry.cache_dir(args.dataset)})")
            for split, info in report["splits"].items():
                counts = ", ".join(f"{k} {v}" for k, v in info["class_counts"].items())
                print(f"  {split}: {info['n']} images ({counts})")
    elif args.data_command == "show":
        from benchmark.reporting.outputs import output_file
        from datasets.show import draw_class_grid

        out = output_file(Path(args.out))
        split = load_split(registry.ensure(args.dataset), args.split)
        draw_class_grid(split.images, split.labels, out, per_class=args.per_class,
                        title=f"{args.dataset} ({args.split})")
        print(f"wrote {args.out}")


def cmd_source(args: argparse.Namespace) -> None:
    from benchmark.config.devices import resolve_device
    from benchmark.orchestration.profile_resolution import resolve_profile
    from benchmark.services.source import get_source_model

    profile = resolve_profile(args.profile, _profile_overrides(args)[1])
    source = get_source_model(args.dataset, profile, args.seed, resolve_device(args.device))
    if args.json:
        _print_json({k: v for k, v in source.info.items()} | {"artifact": str(source.path)})
        return
    state = "trained now" if source.info["built_now"] else "cached"
    print(f"source model {args.dataset} (profile {args.profile}, seed {args.seed}, {state}): {source.path}")
    print(f"source test accuracy {source.info['source_test']['accuracy']:.2f}%")


def cmd_calibrate(args: argparse.Namespace) -> None:
    from benchmark.reporting.report import print_calibration
    from benchmark.services.calibration import calibrate

    result = calibrate(args.setup, args.seed, args.device, numerics=args.numerics or "native")
    _print_json(result) if args.json else print_calibration(result)


def cmd_run(args: argparse.Namespace) -> None:
    from benchmark.orchestration.run import run_method
    from benchmark.reporting.report import print_run

    method_sets, profile_sets = _profile_overrides(args, method_sets=True)
    record = run_method(args.method, args.setup, seed=args.seed, profile=args.profile, overrides=method_sets,
                        profile_overrides=profile_sets, device=args.device, storage_url=args.storage)
    _print_json(record) if args.json else print_run(record)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from benchmark.config.devices import resolve_device
    from benchmark.orchestration.profile_resolution import resolve_profile
    from benchmark.services.pretrain import get_pretrained_backbone
    from methods.ssl.ssl_registry import get_ssl

    get_ssl(args.ssl)
    profile = resolve_profile(args.profile, _profile_overrides(args)[1])
    pretrained = get_pretrained_backbone(args.ssl, args.dataset, profile, args.seed, resolve_device(args.device))
    if args.json:
        _print_json(pretrained.info | {"artifact": str(pretrained.path)})
        return
    info = pretrained.info
    state = "trained now" if info["built_now"] else "cached"
    print(f"{args.ssl} backbone on {args.dataset} (profile {args.profile}, seed {args.seed}, {state}): {pretrained.path}")
    last = info["history"][-1] if info["history"] else {}
    collapse = info["collapse"]
    print(f"final loss {collapse['final_loss']:.4f} (ln P = {collapse['ln_p']:.3f}); prototype usage entropy "
          f"{last.get('usage_entropy', 0.0):.3f} nats, {last.get('prototypes_used', 0)} prototypes used")
    if collapse["collapsed"]:
        print("COLLAPSED: " + "; ".join(collapse["reasons"]))


def cmd_probe(args: argparse.Namespace) -> None:
    from benchmark.orchestration.probe_runs import PROBE_BACKBONES, run_probes
    from benchmark.reporting.report import print_probes

    backbones = _names(args.backbones, "--backbones") if args.backbones is not None else PROBE_BACKBONES
    records = run_probes(args.setup, backbones, seed=args.seed, profile=args.profile,
                         profile_overrides=_profile_overrides(args)[1], device=args.device, storage_url=args.storage,
                         split=args.split)
    _print_json(records) if args.json else print_probes(records)


def cmd_results(args: argparse.Namespace) -> None:
    from benchmark.reporting.results import summary_markdown, summary_table
    from benchmark.store.storage import completed_records, open_storage

    records = [
        r for r in completed_records(open_storage(args.storage))
        if args.setup in (None, r["setup"]) and r.get("kind", "run") == "run"
    ]
    if not records:
        raise UserError("no completed runs in the storage" + (f" for setup {args.setup!r}" if args.setup else ""))
    table = summary_table(records)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(summary_markdown(table))


def cmd_results_export(args: argparse.Namespace) -> None:
    from benchmark.store.record_files import export_records
    from benchmark.store.storage import open_storage

    report = export_records(open_storage(args.storage), Path(args.out))
    for path, count in report.files.items():
        print(f"wrote {path} ({count} trial{'s' if count != 1 else ''})")
    for path in report.removed:
        print(f"removed {path} (no completed trial goes there any more)")
    if report.left_out:
        print(f"left out {report.left_out} trial(s) not COMPLETE (failed, running, waiting or pruned)")


def cmd_results_import(args: argparse.Namespace) -> None:
    from benchmark.store.record_files import import_records
    from benchmark.store.storage import open_storage

    report = import_records(open_storage(args.storage), [Path(path) for path in args.paths])
    print(f"imported {report.imported} trial(s), skipped {report.skipped} already present"
          + (f", created {len(report.studies_created)} stud{'y' if len(report.studies_created) == 1 else 'ies'}"
             if report.studies_created else ""))
    if report.shadowing:
        print(f"note: {report.shadowing} imported trial(s) answer a job that already had a completed trial here; "
              "the imported (later) one now counts in leaderboards")
    for key, before, after in report.shadowing_other:
        print(f"note: job {key}: the imported trial ({after}) replaces one of another configuration ({before})")


def _setups(value: str | None, experiments: list[str]) -> tuple[str, ...]:
    """``--setups`` as a tuple; by default the paper setups of the experiments (each once, in order)."""
    from benchmark.config.setups import get_setup
    from benchmark.orchestration.experiments import get_experiment

    if value is not None:
        setups = _names(value, "--setups")
    else:
        setups = tuple(dict.fromkeys(s for name in experiments for s in get_experiment(name).paper_setups))
    for setup in setups:
        get_setup(setup)
    return setups


def cmd_sweep(args: argparse.Namespace) -> None:
    if args.plan:  # print what the sweep would do (benchmark/orchestration/plan.py) and return
        from benchmark.orchestration.plan import format_plan, plan_sweep

        names = list(_names(args.experiment, "--experiment"))
        plan = plan_sweep(names, _setups(args.setups, names), seeds=args.seeds, profile=args.profile,
                          profile_overrides=_profile_overrides(args)[1], storage_url=args.storage, device=args.device)
        _print_json(plan.as_dict()) if args.json else print(format_plan(plan))
        return
    from benchmark.orchestration.sweep import sweep
    from benchmark.services.artifacts import describe_artifact

    experiments = list(_names(args.experiment, "--experiment"))
    report = sweep(experiments, _setups(args.setups, experiments), seeds=args.seeds, profile=args.profile,
                   profile_overrides=_profile_overrides(args)[1], workers=args.workers, storage_url=args.storage, launcher=args.launcher, device=args.device,
                   max_retries=args.max_retries)
    if args.json:
        _print_json(report.__dict__)
        return
    print(f"sweep {report.experiment}: {report.jobs} jobs, {report.done_before} already done, {report.ran} run now, "
          f"{len(report.failed)} failed")
    for name, count in sorted(report.artifacts_built.items()):
        print(f"  artifact {name} ({describe_artifact(name)}): trained by {count} run(s) of this sweep's jobs")
    for key, error in report.failed.items():
        print(f"  FAILED {key}: {error}")
    if report.failed:
        raise UserError(f"{len(report.failed)} job(s) failed {args.max_retries + 1} times; see the errors above")


def _report_profile(args: argparse.Namespace) -> Any:
    """The profile whose jobs a report shows: ``--profile`` (default each setup's) with the profile overrides the
    sweep was given (``--set``/``--profile-file``), as a ``ProfileChoice``."""
    from benchmark.orchestration.experiments import ProfileChoice
    from benchmark.orchestration.profile_resolution import typed_overrides

    return ProfileChoice(args.profile, typed_overrides(_profile_overrides(args)[1]))


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from benchmark.reporting.leaderboard import write_leaderboards
    from benchmark.store.storage import open_storage

    experiments = _names(args.experiments, "--experiments") if args.experiments is not None else None
    written = write_leaderboards(open_storage(args.storage), Path(args.out), _report_profile(args), args.latex,
                                 experiments, reference=args.reference)
    if not written:
        raise UserError("no experiment has results in the storage yet; run `python -m benchmark sweep` first")
    for path in written:
        print(f"wrote {path}")


def cmd_figures(args: argparse.Namespace) -> None:
    from benchmark.reporting.figures import write_figures
    from benchmark.store.storage import open_storage

    written = write_figures(open_storage(args.storage), Path(args.out), _report_profile(args))
    if not written:
        raise UserError("no figure has results in the storage yet; run `python -m benchmark sweep` first")
    for path in written:
        print(f"wrote {path}")


def cmd_bench(args: argparse.Namespace) -> None:
    import torch

    from benchmark.orchestration.bench import bench_path, format_bench, run_bench

    result = run_bench(args.profile, args.device)
    path = bench_path(result.profile, torch.device(result.device))
    _print_json(result.as_dict() | {"saved_to": str(path)}) if args.json else print(format_bench(result, path))


STORAGE_HELP = "results storage URL (default sqlite:///$FERBENCH_HOME/results.db)"


def _profile_options(p: argparse.ArgumentParser, *, method_sets: bool = False) -> None:
    what = "a hyperparameter (q=50) or, dotted, a profile field" if method_sets else "a profile field (dotted)"
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override {what}: source.epochs=1, ssl.swav.epochs=200, profile.precision=fp32 (repeatable)")
    p.add_argument("--profile-file", metavar="TOML", help="a TOML file of profile fields layered onto the profile "
                   "(top-level keys, [source], [ssl], [ssl.swav] ...); --set wins")
    _numerics_option(p)


def _numerics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--numerics", choices=("native", "portable"), help="native (default: each library's fastest "
                   "kernels for this CPU) or portable (AVX2 caps, one thread: the same digits on any x86-64 CPU with "
                   "AVX2; a profile field, so a job of its own; docs/NUMERICS.md)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="run seed; stage seeds are derived from it (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true", help="print the machine-readable record")


def _add_data(sub: argparse._SubParsersAction) -> None:
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


def _add_artifacts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("source", help="train (or fetch from cache) the source model of a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--profile", default="quick", help="quick | paper (default quick)")
    _profile_options(p)
    _common(p)
    p.set_defaults(func=cmd_source)
    p = sub.add_parser("calibrate", help="the synthetic benchmark's three calibration numbers")
    p.add_argument("--setup", default="synth")
    _numerics_option(p)
    _common(p)
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("pretrain", help="self-supervised pretraining (SwAV, DeepClusterV2) on a dataset's train images")
    p.add_argument("--ssl", required=True, help="swav | deepclusterv2")
    p.add_argument("--dataset", required=True)
    p.add_argument("--profile", default="quick", help="quick | paper (default quick)")
    _profile_options(p)
    _common(p)
    p.set_defaults(func=cmd_pretrain)


def _add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="adapt with one method on one setup and evaluate on the target test split")
    p.add_argument("--method", required=True)
    p.add_argument("--setup", required=True)
    p.add_argument("--profile", help="quick | paper (default: the setup's)")
    _profile_options(p, method_sets=True)
    p.add_argument("--storage", help=STORAGE_HELP)
    _common(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("probe", help="linear probes of frozen backbones on a setup's target (the paper's Table 3)")
    p.add_argument("--setup", required=True)
    p.add_argument("--backbones", help="comma-separated subset of random,imagenet,source,deepclusterv2,swav")
    p.add_argument("--split", default="test", choices=("test", "val"),
                   help="target split scored: test (reported, stored) or val (synthetic targets only: for choosing "
                        "settings; printed, never stored)")
    p.add_argument("--profile", help="quick | paper (default: the setup's)")
    _profile_options(p)
    p.add_argument("--storage", help=STORAGE_HELP)
    _common(p)
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("results", help="stored runs: mean +- std table (show, the default), export, import",
                       description="Without an action: `results show`.")
    _results_show_options(p)
    p.set_defaults(func=cmd_results)
    rsub = p.add_subparsers(dest="results_command", metavar="ACTION")
    show = rsub.add_parser("show", help="mean +- std over seeds of the stored runs, as a markdown table (default)")
    _results_show_options(show, argparse.SUPPRESS)
    show.set_defaults(func=cmd_results)
    export = rsub.add_parser("export", help="the COMPLETE trials as JSON lines, one file per experiment "
                             "(runs.jsonl: trials of no sweep)")
    export.add_argument("--out", default="leaderboards/records", help="output folder (default leaderboards/records)")
    export.add_argument("--storage", default=argparse.SUPPRESS, help=STORAGE_HELP)
    export.set_defaults(func=cmd_results_export)
    load = rsub.add_parser("import", help="add the trials of exported JSON lines to a storage (already present: "
                           "skipped)")
    load.add_argument("paths", nargs="+", metavar="PATH", help="records files, or folders of *.jsonl")
    load.add_argument("--storage", default=argparse.SUPPRESS, help=STORAGE_HELP)
    load.set_defaults(func=cmd_results_import)


def _results_show_options(p: argparse.ArgumentParser, default: Any = None) -> None:
    """``results`` (and ``results show``) options; ``default`` SUPPRESS on the action keeps those given before it."""
    p.add_argument("--setup", default=default, help="only this setup")
    p.add_argument("--storage", default=default, help=STORAGE_HELP)
    p.add_argument("--json", action="store_true", default=False if default is None else default)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run every missing job of an experiment (the paper's tables and figures)")
    p.add_argument("--experiment", required=True,
                   help="table1 | table2 | table3 | table4 | fig3 | fig4, or several comma-separated (run together)")
    p.add_argument("--setups", help="comma-separated setups (default: the paper's setups of the experiment)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (default 1)")
    p.add_argument("--workers", type=int, default=1, help="parallel workers on the storage (default 1)")
    p.add_argument("--launcher", default="local", choices=("local", "slurm"), help="local processes or SLURM (submitit)")
    p.add_argument("--max-retries", type=int, default=2, help="retries of a failing job (default 2)")
    p.add_argument("--profile", help="quick | paper (default: each setup's)")
    _profile_options(p)
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto; one GPU per worker)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plan", action="store_true",
                   help="print the jobs (done or missing), the artifacts they need and the projected device-hours; "
                   "run nothing")
    p.set_defaults(func=cmd_sweep)


def _add_reports(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="markdown leaderboards of every experiment with results")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--out", default="leaderboards", help="output folder (default leaderboards/)")
    p.add_argument("--experiments", help="comma-separated subset (default: all with results)")
    p.add_argument("--profile", help="only records of this profile (default: each setup's)")
    _profile_options(p)
    p.add_argument("--latex", action="store_true", help="also write LaTeX tables")
    p.add_argument("--reference", help="label of the row every line is also compared with, paired "
                                       "(default: each experiment's, e.g. 'CluP (SwAV)' in table1)")
    p.set_defaults(func=cmd_leaderboard)
    p = sub.add_parser("figures", help="the paper's figures (PNG and PDF) from the stored trials")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--out", default="figures", help="output folder (default figures/)")
    p.add_argument("--profile", help="only records of this profile (default: each setup's)")
    _profile_options(p)
    p.set_defaults(func=cmd_figures)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every training stage on this device at a profile's sizes and project "
                       "the paper's jobs (saved for sweep --plan)")
    p.add_argument("--profile", default="paper", help="tiny | quick | paper (default paper)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="fer-sfda-bench: source-free domain adaptation benchmark for facial expression recognition.",
        epilog="Environment: FERBENCH_HOME (caches, artifacts, results; default ~/.cache/fer-sfda-bench), "
        "FERBENCH_DATA (raw releases, one sub-folder per dataset), FERBENCH_IMAGENET_WEIGHTS (local "
        "torchvision ResNet-18 weights for the paper profile), FERBENCH_QUIET (no progress bars).",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of a user error (also FERBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("list", help="methods, setups, datasets, backbones, profiles, experiments")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)
    for add in (_add_data, _add_artifacts, _add_runs, _add_sweep, _add_reports, _add_bench):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one paragraph on stderr and return 2 (no traceback), unless
    ``--debug`` or ``FERBENCH_DEBUG=1`` asks for the traceback (the error is re-raised).

    SIGTERM (e.g. a scheduler's pre-emption) is turned into KeyboardInterrupt, so a running trial is
    marked failed and temporary files are removed on the way out.
    """
    if argv is None:  # the real command line: set the portable caps before any library loads (re-executes)
        reexec_if_portable(sys.argv[1:])
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("FERBENCH_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    interrupt_on_sigterm()
    try:
        check_options(vars(args))
        args.func(args)
    except (UserError, DatasetError) as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`results show | head -2`): stop quietly, as `cat` does
        _drop_stdout()
        return 141
    return 0


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush into a closed pipe raises nothing."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests): nothing to flush into
        pass

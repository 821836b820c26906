"""``results`` (``show``, the default: mean +- std of the stored runs), ``results export`` and ``results import``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.cli.arguments import STORAGE_HELP
from benchmark.config.errors import UserError


def cmd_results(args: argparse.Namespace) -> None:
    from benchmark.store.storage import completed_records, open_storage

    records = [  # the storage first: a wrong --storage fails before the tables' imports (pandas, torch)
        r for r in completed_records(open_storage(args.storage))
        if args.setup in (None, r["setup"]) and r.get("kind", "run") == "run"
    ]
    if not records:
        raise UserError("no completed runs in the storage" + (f" for setup {args.setup!r}" if args.setup else ""))
    from benchmark.reporting.results import summary_markdown, summary_table

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


def _show_options(p: argparse.ArgumentParser, default: Any = None) -> None:
    """``results`` (and ``results show``) options; ``default`` SUPPRESS on the action keeps those given before it."""
    p.add_argument("--setup", default=default, help="only this setup")
    p.add_argument("--storage", default=default, help=STORAGE_HELP)
    p.add_argument("--json", action="store_true", default=False if default is None else default)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``results [show|export|import]``."""
    p = sub.add_parser("results", help="stored runs: mean +- std table (show, the default), export, import",
                       description="Without an action: `results show`.")
    _show_options(p)
    p.set_defaults(func=cmd_results)
    rsub = p.add_subparsers(dest="results_command", metavar="ACTION")
    show = rsub.add_parser("show", help="mean +- std over seeds of the stored runs, as a markdown table (default)")
    _show_options(show, argparse.SUPPRESS)
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

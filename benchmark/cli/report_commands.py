"""``leaderboard`` (markdown/LaTeX tables of every experiment, and the results page) and ``figures``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.cli.arguments import STORAGE_HELP, names, profile_options, profile_overrides
from benchmark.config.errors import UserError

#: ``leaderboard --out``'s default; with it (and only with it) the results page defaults to ``RESULTS_PAGE``.
LEADERBOARDS = "leaderboards"
RESULTS_PAGE = "docs/RESULTS.md"


def _report_profile(args: argparse.Namespace) -> Any:
    """The profile whose jobs a report shows: ``--profile`` (default each setup's) with the profile overrides the
    sweep was given (``--set``/``--profile-file``), as a ``ProfileChoice``."""
    from benchmark.orchestration.experiments import ProfileChoice
    from benchmark.orchestration.profile_resolution import typed_overrides

    return ProfileChoice(args.profile, typed_overrides(profile_overrides(args)[1]))


def _wrote(written: list[Path], nothing: str) -> None:
    if not written:
        raise UserError(nothing)
    for path in written:
        print(f"wrote {path}")


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from benchmark.store.storage import open_storage

    experiments = names(args.experiments, "--experiments") if args.experiments is not None else None
    storage = open_storage(args.storage)  # first: a wrong --storage fails before the tables' imports (torch)
    from benchmark.reporting.leaderboard import write_leaderboards

    written = write_leaderboards(storage, Path(args.out), _report_profile(args), args.latex, experiments,
                                 reference=args.reference)
    _wrote(written, "no experiment has results in the storage yet; run `python -m benchmark sweep` first")
    page = args.results_page if args.results_page is not None else (RESULTS_PAGE if args.out == LEADERBOARDS else None)
    if page:
        from benchmark.reporting.results_page import write_results_page

        print(f"wrote {write_results_page([p for p in written if p.suffix == '.md'], Path(page))}")


def cmd_figures(args: argparse.Namespace) -> None:
    from benchmark.store.storage import open_storage

    storage = open_storage(args.storage)  # first: a wrong --storage fails before the figures' imports (torch)
    from benchmark.reporting.figures import write_figures

    written = write_figures(storage, Path(args.out), _report_profile(args), images=not args.csv_only)
    _wrote(written, "no figure has results in the storage yet; run `python -m benchmark sweep` first")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``leaderboard`` and ``figures``."""
    p = sub.add_parser("leaderboard", help="markdown leaderboards of every experiment with results")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--out", default=LEADERBOARDS, help="output folder (default leaderboards/)")
    p.add_argument("--results-page", metavar="PATH", help=f"also compose this results page from the markdown "
                   f"leaderboards (default {RESULTS_PAGE} with the default --out, none otherwise)")
    p.add_argument("--experiments", help="comma-separated subset (default: all with results)")
    p.add_argument("--profile", help="only records of this profile (default: each setup's)")
    profile_options(p)
    p.add_argument("--latex", action="store_true", help="also write LaTeX tables")
    p.add_argument("--reference", help="label of the row every line is also compared with, paired "
                                       "(default: each experiment's reference row)")
    p.set_defaults(func=cmd_leaderboard)
    p = sub.add_parser("figures", help="the paper's figures (PNG and PDF) from the stored trials")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--out", default="figures", help="output folder (default figures/)")
    p.add_argument("--profile", help="only records of this profile (default: each setup's)")
    p.add_argument("--csv-only", action="store_true",
                   help="write only the CSV behind each figure, without drawing it (the numbers, in seconds)")
    profile_options(p)
    p.set_defaults(func=cmd_figures)

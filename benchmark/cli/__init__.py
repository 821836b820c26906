"""Command line: ``python -m benchmark COMMAND`` (contract: docs/PROTOCOL.md), one module per command group:

- ``data_commands``: ``list``, ``data {prepare,verify,show}``
- ``artifact_commands``: ``source``, ``calibrate``, ``pretrain``
- ``run_commands``: ``run``, ``probe``
- ``results_commands``: ``results [show]``, ``results export``, ``results import``
- ``sweep_commands``: ``sweep`` (and ``sweep --plan``)
- ``report_commands``: ``leaderboard`` (and the results page), ``figures``
- ``bench_command``: ``bench``
- ``arguments``: the options and output helpers they share

Each module registers its sub-commands (``add_parsers``) and holds their ``cmd_*`` functions, which import the
heavy modules (torch, the services) only when they run. ``main`` is the one place a ``UserError`` (``DatasetError``
included) becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmark.cli import (
    artifact_commands,
    bench_command,
    data_commands,
    report_commands,
    results_commands,
    run_commands,
    sweep_commands,
)
from benchmark.config.errors import UserError, interrupt_on_sigterm
from benchmark.config.numerics import reexec_if_portable
from benchmark.config.options import check_options

__all__ = ["build_parser", "main"]

#: In ``--help`` order.
COMMAND_MODULES = (data_commands, artifact_commands, run_commands, results_commands, sweep_commands, report_commands,
                   bench_command)


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
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
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
    except UserError as error:  # the root of every user-facing error (DatasetError, CheckpointError...)
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

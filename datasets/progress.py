"""One look for every progress bar and log line (rich), quiet when asked or when not on a terminal.

It lives in the bottom layer because preparing data is the first work that shows progress; every layer above
uses it.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Progress and log lines go to stderr so that ``--json`` output on stdout stays machine-readable.
console = Console(stderr=True)
_bars_disabled = False


def disable_bars() -> None:
    """No progress bars in this process (a sweep worker: several processes share one terminal); log lines stay."""
    global _bars_disabled
    _bars_disabled = True


def progress_bar(transient: bool = True) -> Progress:
    """A rich Progress with description, bar, count, elapsed and remaining time.

    Disabled when ``FERBENCH_QUIET`` is set, in a sweep worker (``disable_bars``) or when stderr is not a
    terminal (CI logs stay readable).
    """
    quiet = _bars_disabled or bool(os.environ.get("FERBENCH_QUIET")) or not sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=quiet,
    )


def log(message: str) -> None:
    """A one-line status message on stderr (silenced by ``FERBENCH_QUIET``)."""
    if not os.environ.get("FERBENCH_QUIET"):
        console.print(message, highlight=False)

"""Human-readable reports of run records, probes and calibration results (rich tables on stdout), in lines of at
most ``WIDTH`` columns: ``wrap`` breaks long text between clauses, never in a word."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from datasets.labels import CLASS_NAMES

stdout = Console()

#: The widest line a human-readable report prints (an 80-column terminal).
WIDTH = 80

_CLAUSE, _ITEM, _WORD = re.compile(r"(?<=;) +|(?<=\S) {2,}"), re.compile(r"(?<=,) +"), re.compile(r" +")

#: Where ``wrap`` may break a line, strongest first, as (gap, outside brackets only): after a ``;`` or at a run of
#: spaces (a column gap), after a ``,`` (both first outside brackets, then inside), at any space.
_GAPS = ((_CLAUSE, True), (_ITEM, True), (_CLAUSE, False), (_ITEM, False), (_WORD, False))


def _depth(text: str) -> int:
    return sum(text.count(c) for c in "([") - sum(text.count(c) for c in ")]")


def _split(text: str, level: int) -> list[tuple[str, str]]:
    """``text`` cut at the ``level`` gaps of ``_GAPS``: (piece, the spaces after it) pairs."""
    pattern, outside_only = _GAPS[level]
    pieces, start = [], 0
    for gap in pattern.finditer(text):
        if gap.start() == 0 or (outside_only and _depth(text[:gap.start()]) > 0):
            continue
        pieces.append((text[start:gap.start()], gap.group()))
        start = gap.end()
    pieces.append((text[start:], ""))
    return pieces


def wrap(text: str, indent: str = "  ", width: int = WIDTH, measure: Callable[[str], int] = len) -> list[str]:
    """``text`` as lines of at most ``width`` columns (``measure`` counts them): a piece that does not fit on the
    line goes to the next one (starting with ``indent``) at the strongest break that fits (``_GAPS``); only a
    single word wider than a line overflows."""
    lines: list[str] = []
    line = gap = ""

    def place(piece: str, level: int) -> None:
        nonlocal line, gap
        if measure(line + gap + piece) <= width:
            line += gap + piece
        elif level + 1 < len(_GAPS) and (measure(indent + piece) > width or not line.strip()):
            for sub, after in _split(piece, level + 1):
                place(sub, level + 1)
                gap = after
        elif line.strip():
            lines.append(line)
            line = indent + piece
        else:
            line += gap + piece

    for piece, after in _split(text, 0):
        place(piece, 0)
        gap = after
    return [*lines, line]


def _width() -> int:
    return min(stdout.width, WIDTH)


def _cells(markup: str) -> int:
    return Text.from_markup(markup).cell_len


def _say(markup: str, indent: str = "  ") -> None:
    """Print one paragraph of rich markup, wrapped between clauses to the report width."""
    for line in wrap(markup, indent, _width(), _cells):
        stdout.print(line, width=_width())


def _table(title: str, *columns: str) -> Table:
    """A table whose title is wrapped between clauses (each line centred) and which is at least as wide."""
    lines = wrap(title, "", _width())
    table = Table(title="\n".join(lines), min_width=max(len(line) for line in lines))
    for column in columns:
        table.add_column(column)
    return table


def _print_table(table: Table) -> None:
    stdout.print(table, width=_width())


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def print_run(record: dict[str, Any]) -> None:
    """Accuracy, per-class recall, confusion matrix, pseudo-label stats and time per stage of one run."""
    _say(
        f"[bold]{record['method']}[/] ({record['setting']}) on [bold]{record['setup']}[/] "
        f"{record['source_dataset']} -> {record['target_dataset']}, profile {record['profile']}, seed {record['seed']}"
    )
    _say(
        f"target test accuracy [bold]{_pct(record['accuracy'])}%[/]  mean class accuracy "
        f"{_pct(record['mean_class_accuracy'])}%  (n = {record['n_test']}; source test accuracy "
        f"{_pct(record['source_test_accuracy'])}%)"
    )
    per_class = _table("per-class recall (%) and confusion (rows true, columns predicted)", "class")
    per_class.add_column("recall", justify="right")
    for name in CLASS_NAMES:
        per_class.add_column(name[:4], justify="right")
    for name, row in zip(CLASS_NAMES, record["confusion"]):
        per_class.add_row(name, _pct(record["class_accuracy"][name]), *(str(v) for v in row))
    _print_table(per_class)
    if record.get("pseudo_labels"):
        stats = record["pseudo_labels"]
        _say(
            f"pseudo-labels: kept {stats['kept']} ({100 * stats['kept_fraction']:.1f}%), "
            f"accuracy vs truth (after the fact) {_pct(stats['accuracy_vs_truth'])}%"
        )
    _say("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in record["seconds"].items()))


def print_calibration(result: dict[str, Any]) -> None:
    """The three calibration numbers with their targets."""
    table = _table(f"calibration of {result['setup']} ({result['source']} -> {result['target']}, "
                   f"profile {result['profile']}, seed {result['seed']})", "measure", "accuracy %", "target", "holds")
    labels = {
        "source_on_source": f"source model ({result['source']}) on {result['source']} test",
        "source_on_target": f"source model ({result['source']}) on {result['target']} test",
        "target_on_target": f"same network trained on {result['target']} labels, on {result['target']} test",
    }
    for name, value in result["accuracy"].items():
        table.add_row(labels[name], _pct(value), result["targets"][name], "yes" if result["passed"][name] else "NO")
    _print_table(table)


def print_probes(records: list[dict[str, Any]]) -> None:
    """One row per probed backbone: linear-probe accuracy on the target test split, or why it is missing."""
    first = records[0]
    table = _table(f"linear probes on {first['target_dataset']} ({first['setup']}, profile {first['profile']}, "
                   f"seed {first['seed']}; trained with target train labels: oracle)",
                   "backbone", "accuracy %", "mean class acc. %", "note")
    for r in records:
        if r["available"]:
            table.add_row(r["backbone"], _pct(r["accuracy"]), _pct(r["mean_class_accuracy"]), r["note"])
        else:
            table.add_row(r["backbone"], "-", "-", f"unavailable: {r['note']}")
    _print_table(table)

"""The frames a leaderboard shows, one per kind of table (``TableKind``), and their markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.orchestration.experiments import Experiment
from benchmark.orchestration.report_specs import TableKind
from benchmark.reporting import paper
from benchmark.reporting.cells import TableLine, per_seed, table_seeds
from benchmark.reporting.paired_tables import PairedTable, delta_column
from benchmark.reporting.results import to_markdown
from benchmark.reporting.statistics import LEVEL
from benchmark.reporting.table_notes import (
    paper_beside,
    paper_column,
    paper_numbers,
    shown_label,
    synthetic_context,
)
from datasets.labels import CLASS_NAMES


def _setup_columns(experiment: Experiment, setup: str, line: TableLine) -> dict[str, str]:
    """A line's columns for one setup: ours, then (where the paper's table has numbers for the setup, or its
    target for the probe table) the paper's and the difference."""
    cell = line.cells[setup]
    stats = cell.mean_std()
    columns = {setup: cell.text()}
    if paper_beside(experiment, setup):
        theirs = (paper.paper_value(paper_numbers(experiment), line.paper_label, paper_column(experiment, setup))
                  if line.paper_label else None)
        columns[f"{setup} paper"] = "-" if theirs is None else f"{theirs:.2f}"
        columns[f"{setup} diff"] = "-" if theirs is None or stats is None else f"{stats[0] - theirs:+.2f}"
    return columns


def _accuracy_entry(experiment: Experiment, setups: tuple[str, ...], line: TableLine, index: int,
                    seeds: Sequence[int], paired: PairedTable) -> dict[str, Any]:
    """One line of an accuracy table: method, setting, selection rule, the setups' columns (ours, per seed, the
    paper's), the average, then the paired differences per setup and on average."""
    entry: dict[str, Any] = {"method": shown_label(line), "setting": line.setting, "selection": line.selection}
    means = []
    for setup in setups:
        columns = _setup_columns(experiment, setup, line)
        entry[setup] = columns.pop(setup)
        entry[f"{setup} per seed"] = per_seed(line.cells[setup], seeds)
        entry.update(columns)
        stats = line.cells[setup].mean_std()
        if stats is not None:
            means.append(stats[0])
    if len(setups) > 1:
        entry["average"] = f"{np.mean(means):.2f}" if len(means) == len(setups) else "-"
    if synthetic_context(experiment, setups):
        theirs = paper.paper_average(paper_numbers(experiment), line.paper_label) if line.paper_label else None
        entry["paper (4 real setups, avg.)"] = "-" if theirs is None else f"{theirs:.2f}"
    for label in paired.compared:
        for setup in setups:
            entry[delta_column(setup, label)] = paired.cells[index, setup, label].text()
        if len(setups) > 1:
            entry[delta_column("average", label)] = paired.averages[index, label].text()
    return entry


def accuracy_frame(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine],
                   paired: PairedTable) -> pd.DataFrame:
    """One row per table line: method, setting, selection rule, per setup ours, per seed (and the paper's +
    diff), the average, then the paired differences (``paired``, from ``paired_comparisons``)."""
    seeds = table_seeds(lines)
    return pd.DataFrame([_accuracy_entry(experiment, setups, line, i, seeds, paired) for i, line in enumerate(lines)])


def class_frame(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine],
                paired: PairedTable) -> pd.DataFrame:
    """Per setup and line, the mean per-class recall over seeds (and the paper's, where it has them); class
    recall tables have no paired differences (``paired`` is ignored)."""
    reference = paper_numbers(experiment)
    rows = []
    for setup in setups:
        for line in lines:
            cell = line.cells[setup]
            theirs = reference.get(line.label, {}).get(setup)
            entry: dict[str, Any] = {"setup": setup, "method": shown_label(line), "seeds": len(cell.records)}
            for index, name in enumerate(CLASS_NAMES):
                values = [r["class_accuracy"][name] for r in cell.records]
                ours = f"{np.mean(values):.2f}" if values else "-"
                entry[name] = ours if theirs is None else f"{ours} (paper {theirs[index]:.2f})"
            rows.append(entry)
    return pd.DataFrame(rows)


#: The frame of each kind of table: (experiment, setups, lines, paired comparisons) -> frame.
FRAMES = {TableKind.ACCURACY: accuracy_frame, TableKind.CLASS_RECALL: class_frame}


def frame_markdown(frame: pd.DataFrame, paired: PairedTable) -> str:
    """The frame as markdown: the accuracy columns, then (when there are any) the paired differences as a second
    table with the method and setting again: every column of the frame is shown once."""
    suffixes = tuple(delta_column("", label) for label in paired.compared)
    deltas = [c for c in frame.columns if c.endswith(suffixes)]
    if not deltas:
        return to_markdown(frame)
    main = frame[[c for c in frame.columns if c not in deltas]]
    title = f"Paired differences (points) with their {100 * LEVEL:.0f}% intervals:"
    return "\n".join([to_markdown(main), "", title, "", to_markdown(frame[["method", "setting", *deltas]])])

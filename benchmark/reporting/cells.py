"""The cells of a leaderboard: per table line and setup, the run records (one per seed) it is computed from.

A fixed row's cell is found by job key, so only runs with exactly the row's resolved hyperparameters count; a
search line's cell holds, per seed, the trial its selection rule picks from the search's one study (every rule of
a search picks from the same trials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.orchestration.experiments import Experiment, Row, Search
from benchmark.orchestration.selection import SelectionRule
from benchmark.store.identity import search_key_recipe
from benchmark.store.stored_trials import StoredTrials
from methods import registry
from methods.declarations import Setting


def mean_std(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and std (ddof 1; 0 for a single value) of ``values``; None when there are none."""
    if not len(values):
        return None
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summary(values: Sequence[float]) -> str:
    """``mean ± std (n)``, or ``-`` when there are no values."""
    stats = mean_std(values)
    return "-" if stats is None else f"{stats[0]:.2f} ± {stats[1]:.2f} ({len(values)})"


@dataclass(frozen=True)
class Cell:
    """One row x setup: the records it is computed from (one per seed) and, for searches, trials per seed."""

    records: list[dict[str, Any]]
    trials_per_seed: int = 0

    @property
    def accuracies(self) -> np.ndarray:
        """The records' accuracies (%), one per seed."""
        return np.array([r["accuracy"] for r in self.records], dtype=float)

    @property
    def seeds(self) -> list[int]:
        """The records' seeds."""
        return [r["seed"] for r in self.records]

    def mean_std(self) -> tuple[float, float] | None:
        """Mean and std of the accuracies (``mean_std``)."""
        return mean_std(self.accuracies)

    def text(self) -> str:
        """The cell as a table shows it (``summary``)."""
        return summary(self.accuracies)


def row_cell(experiment: Experiment, row: Row, setup: str, stored: StoredTrials, profile: str | None = None) -> Cell:
    """The records of ``experiment``'s fixed ``row`` on ``setup``: one per seed found (seeds in increasing order)."""
    records = []
    for seed in stored.seeds:
        record = stored.by_key.get(row.job(experiment.name, setup, seed, profile).key)
        if record is not None:
            records.append(record)
    return Cell(records)


def search_trials(search: Search, setup: str, seed: int, stored: StoredTrials,
                  profile: str | None = None) -> list[dict[str, Any]]:
    """The records of ``search``'s completed trials on ``setup`` for ``seed`` made with its current recipe (its
    one study, whatever rule later picks from them)."""
    job = search.job("", setup, seed, profile)
    return [record for _, record, key in stored.by_study.get(job.study_name, [])
            if key is not None and search_key_recipe(key) == job.recipe]


def search_cell(search: Search, rule: SelectionRule, setup: str, stored: StoredTrials,
                profile: str | None = None) -> Cell:
    """Per seed, the trial ``rule`` picks from the search's trials (``search_trials``)."""
    chosen, sizes = [], []
    for seed in stored.seeds:
        trials = search_trials(search, setup, seed, stored, profile)
        if trials:
            chosen.append(rule.select(trials))
            sizes.append(len(trials))
    return Cell(chosen, min(sizes) if sizes else 0)


def search_line_label(search: Search, rule: SelectionRule) -> str:
    """The label of the line ``rule`` picks from ``search``: ``SHOT (search, IM)``."""
    return f"{search.label} (search, {rule.tag})"


def _setting(method: str, rule: SelectionRule) -> str:
    """sfda | uda | source | oracle: oracle where the rule saw target labels, else the method's setting."""
    return Setting.ORACLE.value if rule.oracle else registry.get(method).setting.value


@dataclass(frozen=True)
class TableLine:
    """One line of a table: what it shows and, per setup, the cell it is computed from.

    Attributes:
        label: the line's name (a search's ends in "(search, <rule tag>)": ``SHOT (search, IM)``).
        setting: sfda | uda | source | oracle.
        selection: how its hyperparameters were chosen (fixed, or the search's rule and trial count).
        cells: setup -> the cell (records, one per seed).
        paper_label: the paper's row to print beside it; None for searches (the paper reports fixed
            hyperparameters only).
        search, rule: for a search's line, the search and the rule that picked its trials (None otherwise).
    """

    label: str
    setting: str
    selection: str
    cells: dict[str, Cell]
    paper_label: str | None
    search: Search | None = None
    rule: SelectionRule | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of the line's cells, setup by setup."""
        return [record for cell in self.cells.values() for record in cell.records]


def table_lines(experiment: Experiment, setups: tuple[str, ...], stored: StoredTrials,
                profile: str | None = None) -> list[TableLine]:
    """The experiment's rows, then a line per search and selection rule, each with its cells on ``setups``
    (computed once here)."""
    lines = [
        TableLine(row.label, _setting(row.method, row.rule), row.rule.display,
                  {s: row_cell(experiment, row, s, stored, profile) for s in setups}, row.label)
        for row in experiment.rows
    ]
    for search in experiment.searches:
        for rule in search.rules:
            cells = {s: search_cell(search, rule, s, stored, profile) for s in setups}
            n = min((c.trials_per_seed for c in cells.values() if c.records), default=0)
            lines.append(TableLine(search_line_label(search, rule), _setting(search.method, rule),
                                   f"{rule.display} over {n} trials", cells, None, search, rule))
    return lines


def table_seeds(lines: list[TableLine]) -> list[int]:
    """The seeds of every record a table's lines use, increasing."""
    return sorted({r["seed"] for line in lines for r in line.records})


def per_seed(cell: Cell, seeds: Sequence[int]) -> str:
    """Each seed's accuracy, ``69.0/53.3/69.0``, in the order of ``seeds`` (``-`` for a seed without a run)."""
    by_seed = {r["seed"]: r["accuracy"] for r in cell.records}
    return "/".join(f"{by_seed[s]:.1f}" if s in by_seed else "-" for s in seeds) if by_seed else "-"


def source_model(record: dict[str, Any]) -> Any:
    """The identity of a run's source model: its artifact (else its profile and seed, for one source dataset)."""
    return record.get("artifacts", {}).get("source") or (record["profile"], record["seed"])

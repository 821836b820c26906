"""Paired comparisons of a leaderboard's lines with the rows its ``TableSpec`` names.

An accuracy table compares every line with two rows (``baseline``, default Source only; ``reference``, default
CluP (SwAV)), paired by seed and target test image, with a bootstrap interval (``benchmark.reporting.statistics``).
Per-image correctness is each run record's ``test_correct`` (one digit per target test image), so a leaderboard
needs the records only, never the data. Records without it (written before runs stored it) are compared over
seeds only, and the table says so.

A search's lines also give its **selection gap**: the oracle's pick minus each unsupervised validator's, paired
the same way. All of a search's lines pick from the same trials, so the gap is what selection without labels
gives up, with no sampling luck in it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config.errors import UserError
from benchmark.orchestration.experiments import Experiment
from benchmark.orchestration.report_specs import TableKind
from benchmark.reporting.cells import Cell, TableLine, search_line_label, source_model
from benchmark.reporting.results import to_markdown
from benchmark.reporting.statistics import (
    LEVEL,
    RESAMPLES,
    SEED,
    Paired,
    image_differences,
    paired_difference,
    seed_differences,
    stratified_average,
    stream,
)
from methods.core.scores import decode_digits


@dataclass(frozen=True)
class Comparison:
    """One line against a compared row on one setup (or on average): the paired result, or why there is none.

    Attributes:
        paired: the interval and its resamples; None: shown as ``-`` (or ``ref`` for the compared row itself).
        reason: why ``-``, or why only seeds were resampled; None otherwise.
        itself: the line is the compared row.
    """

    paired: Paired | None
    reason: str | None = None
    itself: bool = False

    def text(self) -> str:
        """``ref`` for the compared row itself, ``-`` without a result, else the interval."""
        if self.itself:
            return "ref"
        return "-" if self.paired is None else self.paired.interval.text()


@dataclass(frozen=True)
class PairedTable:
    """Every line of a table against each compared row (``TableSpec.baseline``, ``reference``).

    Attributes:
        compared: the compared rows' labels, as found among the lines (baseline first).
        cells: (line index, setup, compared label) -> comparison.
        averages: (line index, compared label) -> comparison of the average over setups (more than one setup).
        resamples, seed: the bootstrap's.
    """

    compared: tuple[str, ...]
    cells: dict[tuple[int, str, str], Comparison]
    averages: dict[tuple[int, str], Comparison]
    resamples: int = RESAMPLES
    seed: int = SEED


def _correctness(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[list[np.ndarray], list[np.ndarray]] | str:
    """Per paired seed, each run's per-image correctness (the records' ``test_correct``); or why it cannot be had
    (then seeds only)."""
    records = [record for pair in pairs for record in pair]
    if any(not r.get("test_correct") for r in records):
        return "records without per-image correctness (written before runs stored it)"
    if len({len(r["test_correct"]) for r in records}) != 1:
        return "records scored on target test splits of different sizes"
    method = [decode_digits(a["test_correct"]).astype(bool) for a, _ in pairs]
    reference = [decode_digits(b["test_correct"]).astype(bool) for _, b in pairs]
    return method, reference


def compare_cells(cell: Cell, against: Cell, rng: np.random.Generator, resamples: int = RESAMPLES) -> Comparison:
    """``cell`` minus ``against`` on ``setup``, paired by seed (same source model); per test image where the
    both records hold per-image correctness, else over seeds only; ``-`` with fewer than 2 paired seeds."""
    by_seed = {r["seed"]: r for r in against.records}
    shared = [(r, by_seed[r["seed"]]) for r in cell.records if r["seed"] in by_seed]
    pairs = [(a, b) for a, b in shared if source_model(a) == source_model(b)]
    if shared and not pairs:
        return Comparison(None, "different source models (each method on its release's source recipe)")
    if len(pairs) < 2:
        return Comparison(None, f"{len(pairs)} seed{'' if len(pairs) == 1 else 's'} paired (2 needed)")
    found = _correctness(pairs)
    if isinstance(found, str):
        differences = seed_differences([a["accuracy"] for a, _ in pairs], [b["accuracy"] for _, b in pairs])
        return Comparison(paired_difference(differences, rng, images=False, resamples=resamples), found)
    return Comparison(paired_difference(image_differences(*found), rng, resamples=resamples))


def compared_rows(experiment: Experiment, lines: list[TableLine], reference: str | None = None) -> tuple[str, ...]:
    """The labels of the rows an accuracy table compares every line with: its baseline and its reference
    (``reference`` overriding the declared one), those found among the lines, without repeats."""
    if experiment.table.kind is not TableKind.ACCURACY:
        return ()
    wanted = (experiment.table.baseline, reference or experiment.table.reference)
    present = {line.label for line in lines}
    return tuple(label for label in dict.fromkeys(wanted) if label is not None and label in present)


def check_reference(reference: str, experiments: list[Experiment]) -> None:
    """A UserError unless ``reference`` is the label of a row of one of the ``experiments`` (``--reference``)."""
    labels = list(dict.fromkeys([*(row.label for e in experiments for row in e.rows),
                                 *(search_line_label(search, rule) for e in experiments for search in e.searches
                                   for rule in search.rules)]))
    if reference not in labels:
        raise UserError(f"--reference {reference!r}: no row of {', '.join(e.name for e in experiments)} has this "
                        f"label; rows: {', '.join(labels)}")


def _average(per_setup: list[Comparison]) -> Comparison:
    """The stratified average over setups of per-setup comparisons, or why there is none."""
    if all(c.paired is not None for c in per_setup):
        interval = stratified_average([c.paired for c in per_setup])  # type: ignore[misc]
        return Comparison(Paired(interval, np.empty(0)))
    return Comparison(None, "a setup has no paired difference")


def paired_comparisons(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine], *,
                       reference: str | None = None, resamples: int = RESAMPLES, seed: int = SEED) -> PairedTable:
    """Every line against each compared row (``compared_rows``) per setup, and on average over the setups
    (stratified: each setup's resamples are its own), each with its own stream of ``seed``."""
    compared = compared_rows(experiment, lines, reference)
    cells: dict[tuple[int, str, str], Comparison] = {}
    averages: dict[tuple[int, str], Comparison] = {}
    for label in compared:
        j = next(k for k, line in enumerate(lines) if line.label == label)
        for i, line in enumerate(lines):
            for setup in setups:
                if i == j:
                    cells[i, setup, label] = Comparison(None, itself=True)
                    continue
                rng = stream(seed, experiment.name, setup, line.label, line.setting, line.selection, label)
                cells[i, setup, label] = compare_cells(line.cells[setup], lines[j].cells[setup], rng, resamples)
            if len(setups) > 1:
                per_setup = [cells[i, setup, label] for setup in setups]
                averages[i, label] = Comparison(None, itself=True) if i == j else _average(per_setup)
    return PairedTable(compared, cells, averages, resamples, seed)


def selection_gaps(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine], *,
                   resamples: int = RESAMPLES, seed: int = SEED) -> pd.DataFrame:
    """Per search and unsupervised validator, the oracle's pick minus the validator's (points) on each setup
    and on average, with paired intervals (``compare_cells``); an empty frame when no search has an oracle."""
    rows = []
    for search in experiment.searches:
        picks = [line for line in lines if line.search is search]
        oracle = next((line for line in picks if line.rule is not None and line.rule.oracle), None)
        if oracle is None:
            continue
        for line in picks:
            if line is oracle:
                continue
            row: dict[str, Any] = {"search": search.label, "oracle minus": line.rule.display}
            per_setup = []
            for setup in setups:
                rng = stream(seed, experiment.name, setup, "selection gap", search.label, line.selection)
                per_setup.append(compare_cells(oracle.cells[setup], line.cells[setup], rng, resamples))
                row[f"{setup} gap"] = per_setup[-1].text()
            if len(setups) > 1:
                row["average gap"] = _average(per_setup).text()
            rows.append(row)
    return pd.DataFrame(rows)


def selection_gap_markdown(gaps: pd.DataFrame) -> list[str]:
    """The selection-gap table with its title and note (no lines when ``gaps`` is empty)."""
    if gaps.empty:
        return []
    return [
        f"Selection gap (points) with its {100 * LEVEL:.0f}% interval: per search, the trial the oracle picks "
        "minus the trial each unsupervised validator picks, from the same trials (one search, every rule applied "
        "afterwards), paired and resampled as the differences above. It is what choosing hyperparameters without "
        "target labels gives up on this search space.",
        "",
        to_markdown(gaps),
        "",
    ]


def _line_names(lines: list[TableLine]) -> list[str]:
    """Each line's name in notes: its label, with its setting where two lines share a label."""
    counts = defaultdict(int)
    for line in lines:
        counts[line.label] += 1
    return [line.label if counts[line.label] == 1 else f"{line.label} [{line.setting}]" for line in lines]


def paired_notes(setups: tuple[str, ...], lines: list[TableLine], paired: PairedTable) -> list[str]:
    """What the paired columns show and cover, then, grouped by reason, where only seeds were resampled (†)
    and where a cell shows ``-``."""
    if not paired.compared:
        return []
    names = _line_names(lines)
    level = f"{100 * LEVEL:.0f}%"
    notes = [
        f"Δ X: the line's accuracy minus row X's, in points, mean over the seeds both have (paired: a seed's runs "
        "adapt the same source model and are scored on the same target test images). In brackets the "
        f"{level} percentile interval of a two-level bootstrap ({paired.resamples} resamples, seed "
        f"{paired.seed}): seeds drawn with replacement and, independently, the target test images with "
        "replacement (one draw for every seed and both rows); * the interval excludes 0. "
        + ("The average's interval resamples each setup independently (stratified bootstrap, Agarwal et al. "
           "2021). " if len(setups) > 1 else "")
        + "ref: the compared row itself. Few seeds make the seed part of an interval optimistic."
    ]
    seeds_only: dict[str, list[str]] = defaultdict(list)
    missing: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))  # reason -> where -> rows
    found = list(paired.cells.items())
    found += [((i, "average", label), c) for (i, label), c in paired.averages.items()]
    for (i, setup, label), comparison in found:
        if comparison.reason is None:
            continue
        where = f"{names[i]} on {setup}"
        if comparison.paired is not None:
            if where not in seeds_only[comparison.reason]:
                seeds_only[comparison.reason].append(where)
        else:
            missing[comparison.reason][where].append(label)
    for reason, places in seeds_only.items():
        notes.append(f"† Seeds only (test images not resampled), {reason}: {', '.join(places)}.")
    if missing:
        every = set(paired.compared)
        parts = [f"{reason}: " + ", ".join(where if set(against) == every else f"{where} (Δ {', '.join(against)})"
                                           for where, against in places.items())
                 for reason, places in missing.items()]
        notes.append(f"'-' where {'; '.join(parts)}.")
    return notes


def delta_column(where: str, label: str) -> str:
    """The name of the paired-difference column of ``where`` (a setup or ``average``) against row ``label``."""
    return f"{where} Δ {label}"

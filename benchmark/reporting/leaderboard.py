"""Leaderboards: markdown (and LaTeX) tables per experiment, a pure function of the results storage.

For each experiment (``benchmark.orchestration.experiments``) and setup, each row's cell is the mean +- std (ddof 1) over
the seeds found in the storage of the row's runs, found by job key, so only runs with exactly the row's
resolved hyperparameters count. Search rows report, per seed, the run their study selected (the best
objective) and then the mean over seeds. The CluP paper's number is printed beside ours, with the
difference, where the paper has one for that row and setup, and a footnote says how the paper's numbers and
ours were obtained. Every table also gives the source models' accuracy on their source test split, beside the
authors' released source models'. What a table shows (its columns, the paper's table beside it) is the
experiment's ``TableSpec``; how each line was selected, its ``SelectionRule``.

An accuracy table also compares every line with two rows its ``TableSpec`` names (``baseline``, default Source
only; ``reference``, default CluP (SwAV)), paired by seed and target test image, with a bootstrap interval
(``benchmark.reporting.statistics``; ``paired_comparisons``). Per-image correctness is each run record's
``test_correct`` (one digit per target test image), so a leaderboard needs the records only, never the data.
Records without it (written before runs stored it) are compared over seeds only, and the table says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config.errors import UserError
from benchmark.config.machine import UNKNOWN, record_machine
from benchmark.config.setups import SETUPS, get_setup
from benchmark.orchestration.experiments import EXPERIMENTS, Experiment, Row, Search, get_experiment, setup_profile
from benchmark.orchestration.report_specs import TableKind
from benchmark.orchestration.selection import SelectionRule
from benchmark.reporting import paper
from benchmark.reporting.outputs import output_folder
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
from benchmark.store.configuration import record_configuration
from benchmark.store.identity import search_key_recipe
from benchmark.store.stored_trials import Storage, StoredTrials
from datasets.labels import CLASS_NAMES
from methods import registry
from methods.core.evaluation import decode_digits


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
        return np.array([r["accuracy"] for r in self.records], dtype=float)

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.records]

    def mean_std(self) -> tuple[float, float] | None:
        return mean_std(self.accuracies)

    def text(self) -> str:
        return summary(self.accuracies)


def row_cell(experiment: Experiment, row: Row, setup: str, stored: StoredTrials, profile: str | None = None) -> Cell:
    """The records of ``experiment``'s fixed ``row`` on ``setup``: one per seed found (seeds in increasing order)."""
    records = []
    for seed in stored.seeds:
        record = stored.by_key.get(row.job(experiment.name, setup, seed, profile).key)
        if record is not None:
            records.append(record)
    return Cell(records)


def search_cell(search: Search, setup: str, stored: StoredTrials, profile: str | None = None) -> Cell:
    """Per seed, the run its search selected (highest objective among the completed trials made with the
    search's current recipe)."""
    chosen, sizes = [], []
    for seed in stored.seeds:
        job = search.job("", setup, seed, profile)
        trials = [(value, record) for value, record, key in stored.by_study.get(job.study_name, [])
                  if key is not None and search_key_recipe(key) == job.recipe]
        if trials:
            chosen.append(max(trials, key=lambda pair: pair[0])[1])
            sizes.append(len(trials))
    return Cell(chosen, min(sizes) if sizes else 0)


def _setting(method: str, rule: SelectionRule) -> str:
    """sfda | uda | source | oracle: oracle where the rule saw target labels, else the method's setting."""
    return "oracle" if rule.oracle else registry.get(method).setting.value


def _paper_numbers(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """The paper's numbers for the experiment's rows (empty where the paper has none)."""
    return {} if experiment.table.paper is None else paper.BY_TABLE[experiment.table.paper]


def _paper_column(experiment: Experiment, setup: str) -> str:
    """The paper's column for a setup: the setup itself, or the target dataset for the probe table."""
    return get_setup(setup).target if experiment.table.paper_by_target else setup


def _paper_beside(experiment: Experiment, setup: str) -> bool:
    """Whether a setup's columns include the paper's: its table has numbers for that setup (or target)."""
    return any(_paper_column(experiment, setup) in columns for columns in _paper_numbers(experiment).values())


def _synthetic_context(experiment: Experiment, setups: tuple[str, ...]) -> bool:
    """Whether a table shows a synthetic setup beside the paper's average (``TableSpec.paper_average``)."""
    return (experiment.table.paper_average and bool(_paper_numbers(experiment))
            and any(not SETUPS[s].paper for s in setups))


def shows_paper(experiment: Experiment, setups: tuple[str, ...]) -> bool:
    """Whether a table prints any of the paper's numbers beside ours (it then carries ``paper_note``)."""
    return _synthetic_context(experiment, setups) or any(_paper_beside(experiment, s) for s in setups)


@dataclass(frozen=True)
class TableLine:
    """One line of a table: what it shows and, per setup, the cell it is computed from.

    Attributes:
        label: the line's name (a search's ends in "(search)").
        setting: sfda | uda | source | oracle.
        selection: how its hyperparameters were chosen (fixed, or the search's rule and trial count).
        cells: setup -> the cell (records, one per seed).
        paper_label: the paper's row to print beside it; None for searches (the paper reports fixed
            hyperparameters only).
    """

    label: str
    setting: str
    selection: str
    cells: dict[str, Cell]
    paper_label: str | None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for cell in self.cells.values() for record in cell.records]


def table_lines(experiment: Experiment, setups: tuple[str, ...], stored: StoredTrials,
                profile: str | None = None) -> list[TableLine]:
    """The experiment's rows, then its searches, each with its cells on ``setups`` (computed once here)."""
    lines = [
        TableLine(row.label, _setting(row.method, row.rule), row.rule.display,
                  {s: row_cell(experiment, row, s, stored, profile) for s in setups}, row.label)
        for row in experiment.rows
    ]
    for search in experiment.searches:
        cells = {s: search_cell(search, s, stored, profile) for s in setups}
        n = min((c.trials_per_seed for c in cells.values() if c.records), default=0)
        lines.append(TableLine(f"{search.label} (search)", _setting(search.method, search.rule),
                               f"{search.rule.display} over {n} trials", cells, None))
    return lines


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
    pairs = [(r, by_seed[r["seed"]]) for r in cell.records
             if r["seed"] in by_seed and _source_model(r) == _source_model(by_seed[r["seed"]])]
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
    labels = list(dict.fromkeys(row.label for e in experiments for row in (*e.rows, *e.searches)))
    if reference not in labels:
        raise UserError(f"--reference {reference!r}: no row of {', '.join(e.name for e in experiments)} has this "
                        f"label; rows: {', '.join(labels)}")


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
                if i == j:
                    averages[i, label] = Comparison(None, itself=True)
                elif all(c.paired is not None for c in per_setup):
                    interval = stratified_average([c.paired for c in per_setup])  # type: ignore[misc]
                    averages[i, label] = Comparison(Paired(interval, np.empty(0)))
                else:
                    averages[i, label] = Comparison(None, "a setup has no paired difference")
    return PairedTable(compared, cells, averages, resamples, seed)


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


def _setup_columns(experiment: Experiment, setup: str, line: TableLine) -> dict[str, str]:
    """A line's columns for one setup: ours, then (where the paper's table has numbers for the setup, or its
    target for the probe table) the paper's and the difference."""
    cell = line.cells[setup]
    stats = cell.mean_std()
    columns = {setup: cell.text()}
    if _paper_beside(experiment, setup):
        theirs = (paper.paper_value(_paper_numbers(experiment), line.paper_label, _paper_column(experiment, setup))
                  if line.paper_label else None)
        columns[f"{setup} paper"] = "-" if theirs is None else f"{theirs:.2f}"
        columns[f"{setup} diff"] = "-" if theirs is None or stats is None else f"{stats[0] - theirs:+.2f}"
    return columns


def per_seed(cell: Cell, seeds: Sequence[int]) -> str:
    """Each seed's accuracy, ``69.0/53.3/69.0``, in the order of ``seeds`` (``-`` for a seed without a run)."""
    by_seed = {r["seed"]: r["accuracy"] for r in cell.records}
    return "/".join(f"{by_seed[s]:.1f}" if s in by_seed else "-" for s in seeds) if by_seed else "-"


def delta_column(where: str, label: str) -> str:
    """The name of the paired-difference column of ``where`` (a setup or ``average``) against row ``label``."""
    return f"{where} Δ {label}"


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
    if _synthetic_context(experiment, setups):
        theirs = paper.paper_average(_paper_numbers(experiment), line.paper_label) if line.paper_label else None
        entry["paper (4 real setups, avg.)"] = "-" if theirs is None else f"{theirs:.2f}"
    for label in paired.compared:
        for setup in setups:
            entry[delta_column(setup, label)] = paired.cells[index, setup, label].text()
        if len(setups) > 1:
            entry[delta_column("average", label)] = paired.averages[index, label].text()
    return entry


def table_seeds(lines: list[TableLine]) -> list[int]:
    """The seeds of every record a table's lines use, increasing."""
    return sorted({r["seed"] for line in lines for r in line.records})


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
    reference = _paper_numbers(experiment)
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


#: The mark of a line whose seeds ran on more than one machine (explained under the table).
MIXED_MACHINES = "‡"


def seeds_by_machine(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The seeds of ``records`` per machine label (``unknown``: made before records carried a fingerprint)."""
    found: dict[str, set[int]] = defaultdict(set)
    for record in records:
        found[record_machine(record)].add(record["seed"])
    return {machine: sorted(seeds) for machine, seeds in sorted(found.items())}


def shown_label(line: TableLine) -> str:
    """A line's label as a table shows it: marked ``‡`` when its seeds ran on different machines."""
    return f"{line.label} {MIXED_MACHINES}" if len(seeds_by_machine(line.records)) > 1 else line.label


def machine_notes(lines: list[TableLine]) -> list[str]:
    """The machines the records were made on and, per line marked ``‡``, which seeds ran where; nothing when no
    record carries a fingerprint (those made before it count as one machine)."""
    machines = seeds_by_machine([record for line in lines for record in line.records])
    if set(machines) <= {UNKNOWN}:
        return []
    notes = [f"Records from machines: {'; '.join(machines)}."]
    for line in lines:
        mixed = seeds_by_machine(line.records)
        if len(mixed) > 1:
            where = "; ".join(f"{machine} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
                              for machine, seeds in mixed.items())
            notes.append(f"{MIXED_MACHINES} {line.label}: seeds from different machines, whose digits differ for one "
                         f"seed (docs/NUMERICS.md): {where}.")
    return notes


def _commits(records: list[dict[str, Any]]) -> str:
    """The commits the records were made at (``versions.git``), sorted."""
    commits = sorted({r.get("versions", {}).get("git", "?") for r in records})
    return ", ".join(commits) if commits else "-"


def configuration_notes(lines: list[TableLine]) -> list[str]:
    """One note per cell whose seeds ran different configurations (profile overrides or code,
    ``benchmark.store.configuration``): its mean pools them, so it says which; nothing when every cell is one."""
    notes = []
    for line in lines:
        for setup, cell in line.cells.items():
            configurations = sorted({record_configuration(record) for record in cell.records})
            if len(configurations) > 1:
                notes.append(f"Mixed configurations: {line.label} on {setup} pools seeds of "
                             f"{' | '.join(configurations)}; its mean is not one configuration's.")
    return notes


def paper_note(experiment: Experiment, lines: list[TableLine]) -> str:
    """The footnote of a table with the paper's numbers: how they were obtained, how ours were."""
    borrowed = [f"{label} (its {name})" for label, name in paper.CD_FER_ROWS.items()
                if label in _paper_numbers(experiment) and any(line.paper_label == label for line in lines)]
    return " ".join([
        "The paper's numbers are the authors' best epoch on the target test split "
        "(their code evaluates on it every epoch and logs the maximum).",
        *([f"The paper's {' and '.join(borrowed)} {'comes' if len(borrowed) == 1 else 'come'} from the CD-FER "
           "benchmark: ResNet-50, best epoch."] if borrowed else []),
        "Ours are the last iterate, with hyperparameters fixed or selected without target labels "
        "(rows whose setting is oracle excepted).",
        "So a gap to the paper is not by itself a shortfall.",
    ])


def _source_model(record: dict[str, Any]) -> Any:
    """The identity of a run's source model: its artifact (else its profile and seed, for one source dataset)."""
    return record.get("artifacts", {}).get("source") or (record["profile"], record["seed"])


def source_line(setups: tuple[str, ...], records: list[dict[str, Any]]) -> str:
    """Per source dataset of ``setups``: the accuracy on its source test split of our source models (mean ± std over
    the distinct ones the records used) and, where the authors released one, of theirs."""
    parts = []
    for source in dict.fromkeys(SETUPS[s].source for s in setups):
        ours = {_source_model(r): r["source_test_accuracy"] for r in records
                if r.get("source_test_accuracy") is not None and SETUPS[r["setup"]].source == source}
        part = f"{source}: ours {summary(list(ours.values()))}"
        theirs = paper.SOURCE_ACCURACY.get(source)
        parts.append(part if theirs is None else f"{part}, authors' released checkpoint {theirs:.2f}")
    return ("Source models, top-1 accuracy (%) on their source test split (ours: mean ± std over the source models "
            f"used, how many in brackets): {'; '.join(parts)}.")


def _tables(frame: pd.DataFrame, paired: PairedTable) -> str:
    """The frame as markdown: the accuracy columns, then (when there are any) the paired differences as a second
    table with the method and setting again: every column of the frame is shown once."""
    suffixes = tuple(delta_column("", label) for label in paired.compared)
    deltas = [c for c in frame.columns if c.endswith(suffixes)]
    if not deltas:
        return to_markdown(frame)
    main = frame[[c for c in frame.columns if c not in deltas]]
    title = f"Paired differences (points) with their {100 * LEVEL:.0f}% intervals:"
    return "\n".join([to_markdown(main), "", title, "", to_markdown(frame[["method", "setting", *deltas]])])


def render(experiment: Experiment, setups: tuple[str, ...], stored: StoredTrials, profile: str | None = None, *,
           reference: str | None = None) -> tuple[str, pd.DataFrame]:
    """The leaderboard markdown of one experiment (and the frame it shows).

    Args:
        reference: the label of the row every line is compared with, besides the baseline (default the
            experiment's ``TableSpec.reference``).
    """
    table = table_lines(experiment, setups, stored, profile)
    paired = paired_comparisons(experiment, setups, table, reference=reference)
    frame = FRAMES[experiment.table.kind](experiment, setups, table, paired)
    used = [record for line in table for record in line.records]
    seeds = table_seeds(table)
    per_seed_text = (" Per seed: each seed's accuracy, seeds in increasing order (- where a seed has no run)."
                     if experiment.table.kind is TableKind.ACCURACY else "")
    lines = [
        f"# {experiment.title}",
        "",
        f"Setups: {', '.join(setups)}; profile: {', '.join(sorted({setup_profile(s, profile) for s in setups}))}; "
        f"seeds found: {', '.join(map(str, seeds)) or 'none'}. Top-1 accuracy (%) on the target test split, mean ± std "
        f"over seeds (number of seeds in brackets), last iterate.{per_seed_text}",
        "",
        "Regenerate: `python -m benchmark sweep --experiment "
        f"{experiment.name} --setups {','.join(setups)} --seeds N` then `python -m benchmark leaderboard`.",
        "",
        _tables(frame, paired),
        "",
        *[part for note in paired_notes(setups, table, paired) for part in (note, "")],
        source_line(setups, used),
        "",
        "Selection rules: *fixed* = the paper's (or the method's published) hyperparameters, no selection; "
        "*search: best IM* = a search scored by an unsupervised validator on the unlabelled target train split; "
        "*oracle* = selected with target test labels: an upper bound on what selection can leak, never a result.",
    ]
    if _synthetic_context(experiment, setups):
        lines.append("The paper column gives the paper's average over its 4 real setups for context; synthetic and real "
                     "accuracies are not comparable, so no difference is printed.")
    if shows_paper(experiment, setups):
        lines += ["", paper_note(experiment, table)]
    notes = [*machine_notes(table), *configuration_notes(table)]
    lines += ["", f"Records from commits: {_commits(used)}.", *[part for note in notes for part in ("", note)], ""]
    return "\n".join(lines), frame


def setups_with_results(experiment: Experiment, stored: StoredTrials, profile: str | None = None) -> tuple[str, ...]:
    """The setups (paper ones first, then synthetic) on which any row of ``experiment`` has a result."""
    found = []
    for setup in SETUPS:
        if any(row_cell(experiment, row, setup, stored, profile).records for row in experiment.rows):
            found.append(setup)
    return tuple(found)


def write_leaderboards(storage: Storage, out: Path, profile: str | None = None, latex: bool = False,
                       experiments: tuple[str, ...] | None = None, *, reference: str | None = None) -> list[Path]:
    """Write ``<out>/<experiment>.md`` (and ``.tex``) for every experiment with results; returns the paths.
    ``reference``: as for ``render``."""
    chosen = [get_experiment(name) for name in experiments or tuple(EXPERIMENTS)]
    if reference is not None:
        check_reference(reference, chosen)
    stored = StoredTrials.load(storage)
    output_folder(out)
    written = []
    for experiment in chosen:
        name = experiment.name
        setups = setups_with_results(experiment, stored, profile)
        if not setups:
            continue
        markdown, frame = render(experiment, setups, stored, profile, reference=reference)
        path = out / f"{name}.md"
        path.write_text(markdown)
        written.append(path)
        if latex:
            tex = out / f"{name}.tex"
            tex.write_text(frame.to_latex(index=False, escape=True))
            written.append(tex)
    return written

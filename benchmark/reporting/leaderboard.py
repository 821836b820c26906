"""Leaderboards: markdown (and LaTeX) tables per experiment, a pure function of the results storage.

For each experiment (``benchmark.orchestration.experiments``) and setup, each row's cell is the mean +- std (ddof 1) over
the seeds found in the storage of the row's runs, found by job key, so only runs with exactly the row's
resolved hyperparameters count. Search rows report, per seed, the run their study selected (the best
objective) and then the mean over seeds. The CluP paper's number is printed beside ours, with the
difference, where the paper has one for that row and setup, and a footnote says how the paper's numbers and
ours were obtained. Every table also gives the source models' accuracy on their source test split, beside the
authors' released source models'. What a table shows (its columns, the paper's table beside it) is the
experiment's ``TableSpec``; how each line was selected, its ``SelectionRule``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from benchmark.config.setups import SETUPS, get_setup
from benchmark.orchestration.experiments import EXPERIMENTS, Experiment, Row, Search, setup_profile
from benchmark.orchestration.report_specs import TableKind
from benchmark.orchestration.selection import SelectionRule
from benchmark.reporting import paper
from benchmark.reporting.results import to_markdown
from benchmark.store.identity import search_key_recipe, trial_key
from datasets.labels import CLASS_NAMES
from methods import registry


@dataclass(frozen=True)
class StoredTrials:
    """The completed trials of a storage, indexed for tables.

    Attributes:
        by_key: job key -> the record of the latest completed trial with that key.
        by_study: study name -> (value, record, job key) of each completed trial (searches select from these).
        seeds: every seed that has a completed record.
    """

    by_key: dict[str, dict[str, Any]]
    by_study: dict[str, list[tuple[float, dict[str, Any], str | None]]]
    seeds: tuple[int, ...]

    @classmethod
    def load(cls, storage: optuna.storages.BaseStorage) -> StoredTrials:
        by_key: dict[str, dict[str, Any]] = {}
        by_study: dict[str, list[tuple[float, dict[str, Any], str | None]]] = defaultdict(list)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                record = trial.user_attrs.get("record")
                if record is None:
                    continue
                key = trial_key(trial.user_attrs)
                by_study[summary.study_name].append((trial.value, record, key))
                if key is not None:
                    by_key[key] = record
        seeds = sorted({record["seed"] for trials in by_study.values() for _, record, _ in trials})
        return cls(by_key, dict(by_study), tuple(seeds))


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


def _accuracy_entry(experiment: Experiment, setups: tuple[str, ...], line: TableLine) -> dict[str, Any]:
    """One line of an accuracy table: method, setting, selection rule, the setups' columns, the average."""
    entry: dict[str, Any] = {"method": line.label, "setting": line.setting, "selection": line.selection}
    means = []
    for setup in setups:
        entry.update(_setup_columns(experiment, setup, line))
        stats = line.cells[setup].mean_std()
        if stats is not None:
            means.append(stats[0])
    if len(setups) > 1:
        entry["average"] = f"{np.mean(means):.2f}" if len(means) == len(setups) else "-"
    if _synthetic_context(experiment, setups):
        theirs = paper.paper_average(_paper_numbers(experiment), line.paper_label) if line.paper_label else None
        entry["paper (4 real setups, avg.)"] = "-" if theirs is None else f"{theirs:.2f}"
    return entry


def accuracy_frame(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine]) -> pd.DataFrame:
    """One row per table line: method, setting, selection rule, then per setup ours (and the paper's + diff)."""
    return pd.DataFrame([_accuracy_entry(experiment, setups, line) for line in lines])


def class_frame(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine]) -> pd.DataFrame:
    """Per setup and line, the mean per-class recall over seeds (and the paper's, where it has them)."""
    reference = _paper_numbers(experiment)
    rows = []
    for setup in setups:
        for line in lines:
            cell = line.cells[setup]
            theirs = reference.get(line.label, {}).get(setup)
            entry: dict[str, Any] = {"setup": setup, "method": line.label, "seeds": len(cell.records)}
            for index, name in enumerate(CLASS_NAMES):
                values = [r["class_accuracy"][name] for r in cell.records]
                ours = f"{np.mean(values):.2f}" if values else "-"
                entry[name] = ours if theirs is None else f"{ours} (paper {theirs[index]:.2f})"
            rows.append(entry)
    return pd.DataFrame(rows)


#: The frame of each kind of table: (experiment, setups, lines) -> frame.
FRAMES = {TableKind.ACCURACY: accuracy_frame, TableKind.CLASS_RECALL: class_frame}


def _commits(records: list[dict[str, Any]]) -> str:
    """The commits the records were made at (``versions.git``), sorted."""
    commits = sorted({r.get("versions", {}).get("git", "?") for r in records})
    return ", ".join(commits) if commits else "-"


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


def render(experiment: Experiment, setups: tuple[str, ...], stored: StoredTrials, profile: str | None = None) -> tuple[str, pd.DataFrame]:
    """The leaderboard markdown of one experiment (and the frame it shows)."""
    table = table_lines(experiment, setups, stored, profile)
    frame = FRAMES[experiment.table.kind](experiment, setups, table)
    used = [record for line in table for record in line.records]
    seeds = sorted({r["seed"] for r in used})
    lines = [
        f"# {experiment.title}",
        "",
        f"Setups: {', '.join(setups)}; profile: {', '.join(sorted({setup_profile(s, profile) for s in setups}))}; "
        f"seeds found: {', '.join(map(str, seeds)) or 'none'}. Top-1 accuracy (%) on the target test split, mean ± std "
        "over seeds (number of seeds in brackets), last iterate.",
        "",
        "Regenerate: `python -m benchmark sweep --experiment "
        f"{experiment.name} --setups {','.join(setups)} --seeds N` then `python -m benchmark leaderboard`.",
        "",
        to_markdown(frame),
        "",
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
    lines += ["", f"Records from commits: {_commits(used)}.", ""]
    return "\n".join(lines), frame


def setups_with_results(experiment: Experiment, stored: StoredTrials, profile: str | None = None) -> tuple[str, ...]:
    """The setups (paper ones first, then synthetic) on which any row of ``experiment`` has a result."""
    found = []
    for setup in SETUPS:
        if any(row_cell(experiment, row, setup, stored, profile).records for row in experiment.rows):
            found.append(setup)
    return tuple(found)


def write_leaderboards(storage: optuna.storages.BaseStorage, out: Path, profile: str | None = None, latex: bool = False,
                       experiments: tuple[str, ...] | None = None) -> list[Path]:
    """Write ``<out>/<experiment>.md`` (and ``.tex``) for every experiment with results; returns the paths."""
    stored = StoredTrials.load(storage)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in experiments or tuple(EXPERIMENTS):
        experiment = EXPERIMENTS[name]
        setups = setups_with_results(experiment, stored, profile)
        if not setups:
            continue
        markdown, frame = render(experiment, setups, stored, profile)
        path = out / f"{name}.md"
        path.write_text(markdown)
        written.append(path)
        if latex:
            tex = out / f"{name}.tex"
            tex.write_text(frame.to_latex(index=False, escape=True))
            written.append(tex)
    return written

"""Leaderboards: markdown (and LaTeX) tables per experiment, a pure function of the results storage.

For each experiment (``benchmark.orchestration.experiments``) and setup, each row's cell is the mean +- std (ddof 1) over
the seeds found in the storage of the row's runs, found by job key, so only runs with exactly the row's
resolved hyperparameters count. Search rows report, per seed, the run their study selected (the best
objective) and then the mean over seeds. The CluP paper's number is printed beside ours, with the
difference, where the paper has one for that row and setup.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from benchmark.config.setups import SETUPS, get_setup
from benchmark.orchestration.experiments import EXPERIMENTS, Experiment, Row, Search, setup_profile
from benchmark.reporting import paper
from benchmark.store.identity import probe_backbone, search_key_recipe, trial_key
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
        if not self.records:
            return None
        values = self.accuracies
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    def text(self) -> str:
        stats = self.mean_std()
        if stats is None:
            return "-"
        return f"{stats[0]:.2f} ± {stats[1]:.2f} ({len(self.records)})"


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


def _setting(method: str) -> str:
    if probe_backbone(method) is not None:
        return "oracle"
    return registry.get(method).setting.value


def _paper_table(experiment: Experiment) -> dict[str, dict[str, float]]:
    return {"table1": paper.TABLE1, "table4": paper.TABLE4}.get(experiment.name, {})


def _paper_column(experiment: Experiment, setup: str) -> str:
    """The paper's column for a setup: the setup itself, or the target dataset for the probe table."""
    return get_setup(setup).target if experiment.name == "table3" else setup


def _synthetic_context(experiment: Experiment, setups: tuple[str, ...]) -> bool:
    """Whether a table shows a synthetic setup beside the paper's average (Tables 1 and 4 only)."""
    return experiment.name in ("table1", "table4") and any(not SETUPS[s].paper for s in setups)


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
        TableLine(row.label, _setting(row.method), row.rule,
                  {s: row_cell(experiment, row, s, stored, profile) for s in setups}, row.label)
        for row in experiment.rows
    ]
    for search in experiment.searches:
        cells = {s: search_cell(search, s, stored, profile) for s in setups}
        n = min((c.trials_per_seed for c in cells.values() if c.records), default=0)
        setting = "oracle" if search.oracle else _setting(search.method)
        lines.append(TableLine(f"{search.label} (search)", setting, f"{search.rule} over {n} trials", cells, None))
    return lines


def accuracy_frame(experiment: Experiment, setups: tuple[str, ...], lines: list[TableLine]) -> pd.DataFrame:
    """One row per table line: method, setting, selection rule, then per setup ours (and the paper's + diff)."""
    reference = paper.TABLE3 if experiment.name == "table3" else _paper_table(experiment)
    rows = []
    for line in lines:
        entry: dict[str, Any] = {"method": line.label, "setting": line.setting, "selection": line.selection}
        means = []
        for setup in setups:
            cell = line.cells[setup]
            entry[setup] = cell.text()
            stats = cell.mean_std()
            theirs = (paper.paper_value(reference, line.paper_label, _paper_column(experiment, setup))
                      if line.paper_label else None)
            if SETUPS[setup].paper or (experiment.name == "table3" and theirs is not None):
                entry[f"{setup} paper"] = "-" if theirs is None else f"{theirs:.2f}"
                entry[f"{setup} diff"] = "-" if theirs is None or stats is None else f"{stats[0] - theirs:+.2f}"
            if stats is not None:
                means.append(stats[0])
        if len(setups) > 1:
            entry["average"] = f"{np.mean(means):.2f}" if len(means) == len(setups) else "-"
        if _synthetic_context(experiment, setups):
            theirs = paper.paper_average(reference, line.paper_label) if line.paper_label else None
            entry["paper (4 real setups, avg.)"] = "-" if theirs is None else f"{theirs:.2f}"
        rows.append(entry)
    return pd.DataFrame(rows)


def class_frame(setups: tuple[str, ...], lines: list[TableLine]) -> pd.DataFrame:
    """Table 2: per setup and line, the mean per-class recall over seeds (and the paper's on raf_fer2013)."""
    rows = []
    for setup in setups:
        for line in lines:
            cell = line.cells[setup]
            theirs = paper.TABLE2_RAF_FER2013.get(line.label) if setup == "raf_fer2013" else None
            entry: dict[str, Any] = {"setup": setup, "method": line.label, "seeds": len(cell.records)}
            for index, name in enumerate(CLASS_NAMES):
                values = [r["class_accuracy"][name] for r in cell.records]
                ours = f"{np.mean(values):.2f}" if values else "-"
                entry[name] = ours if theirs is None else f"{ours} (paper {theirs[index]:.2f})"
            rows.append(entry)
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """A pipe table of string cells (no index)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _commits(records: list[dict[str, Any]]) -> str:
    """The commits the records were made at (``versions.git``), sorted."""
    commits = sorted({r.get("versions", {}).get("git", "?") for r in records})
    return ", ".join(commits) if commits else "-"


def render(experiment: Experiment, setups: tuple[str, ...], stored: StoredTrials, profile: str | None = None) -> tuple[str, pd.DataFrame]:
    """The leaderboard markdown of one experiment (and the frame it shows)."""
    table = table_lines(experiment, setups, stored, profile)
    frame = class_frame(setups, table) if experiment.name == "table2" else accuracy_frame(experiment, setups, table)
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
        "Selection rules: *fixed* = the paper's (or the method's published) hyperparameters, no selection; "
        "*search: best IM* = a search scored by an unsupervised validator on the unlabelled target train split; "
        "*oracle* = selected with target test labels: an upper bound on what selection can leak, never a result.",
    ]
    if _synthetic_context(experiment, setups):
        lines.append("The paper column gives the paper's average over its 4 real setups for context; synthetic and real "
                     "accuracies are not comparable, so no difference is printed.")
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

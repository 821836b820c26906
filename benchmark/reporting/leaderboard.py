"""Leaderboards: markdown (and LaTeX) tables per experiment, a pure function of the results storage.

For each experiment (``benchmark.orchestration.experiments``) and setup, each row's cell is the mean +- std (ddof 1)
over the seeds found in the storage of the row's runs, found by job key, so only runs with exactly the row's
resolved hyperparameters count (``benchmark.reporting.cells``). A search gives a line per selection rule: per seed,
the trial the rule picks from the search's one study, then the mean over seeds; and the selection gap (oracle
minus each validator, paired). The CluP paper's number is printed beside ours, with the
difference, where the paper has one for that row and setup, and a footnote says how the paper's numbers and
ours were obtained (``benchmark.reporting.table_notes``). Every table also gives the source models' accuracy on their
source test split, beside the authors' released source models'. What a table shows (its columns, the paper's table
beside it) is the experiment's ``TableSpec``; how each line was selected, its ``SelectionRule``. An accuracy table
also compares every line with two rows, paired by seed and target test image (``benchmark.reporting.paired_tables``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.config.setups import SETUPS
from benchmark.orchestration.experiments import EXPERIMENTS, Experiment, get_experiment, setup_profile
from benchmark.orchestration.report_specs import TableKind
from benchmark.reporting.cells import row_cell, table_lines, table_seeds
from benchmark.reporting.outputs import output_folder
from benchmark.reporting.paired_tables import (
    check_reference,
    paired_comparisons,
    paired_notes,
    selection_gap_markdown,
    selection_gaps,
)
from benchmark.reporting.table_frames import FRAMES, frame_markdown
from benchmark.reporting.table_notes import (
    configuration_notes,
    machine_notes,
    paper_note,
    record_commits,
    shows_paper,
    source_line,
    synthetic_context,
)
from benchmark.store.stored_trials import Storage, StoredTrials


def profiles_text(setups: tuple[str, ...], profile: str | None = None) -> str:
    """``profile: P`` when every setup runs at one profile, else each setup's (``profiles: synth quick10, ...``)."""
    names = {setup: setup_profile(setup, profile) for setup in setups}
    if len(set(names.values())) > 1:
        return "profiles: " + ", ".join(f"{setup} {name}" for setup, name in names.items())
    return f"profile: {next(iter(names.values()), '')}"


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
        f"Setups: {', '.join(setups)}; {profiles_text(setups, profile)}; "
        f"seeds found: {', '.join(map(str, seeds)) or 'none'}. Top-1 accuracy (%) on the target test split, mean ± std "
        f"over seeds (number of seeds in brackets), last iterate.{per_seed_text}",
        "",
        "Regenerate: `python -m benchmark sweep --experiment "
        f"{experiment.name} --setups {','.join(setups)} --seeds N` then `python -m benchmark leaderboard`.",
        "",
        frame_markdown(frame, paired),
        "",
        *[part for note in paired_notes(setups, table, paired) for part in (note, "")],
        *(selection_gap_markdown(selection_gaps(experiment, setups, table))
          if experiment.table.kind is TableKind.ACCURACY else []),
        source_line(setups, used),
        "",
        "Selection rules: *fixed* = the paper's (or the method's published) hyperparameters, no selection; "
        "*search: best IM* (ENTROPY, SND) = the trial of a search that an unsupervised validator rates highest on "
        "the unlabelled target train split; *oracle* = the trial of the same search with the best target test "
        "accuracy: an upper bound on what selection can leak, never a result. A search runs once, its "
        "hyperparameters drawn at random; every rule picks from its trials.",
    ]
    if synthetic_context(experiment, setups):
        lines.append("The paper column gives the paper's average over its 4 real setups for context; synthetic and "
                     "real accuracies are not comparable, so no difference is printed.")
    if shows_paper(experiment, setups):
        lines += ["", paper_note(experiment, table)]
    notes = [*machine_notes(table), *configuration_notes(table)]
    lines += ["", f"Records from commits: {record_commits(used)}.",
              *[part for note in notes for part in ("", note)], ""]
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

"""The notes under a leaderboard table: the paper's numbers beside ours, machines, configurations, commits and
source models."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from benchmark.config.machine import UNKNOWN, record_machine
from benchmark.config.setups import SETUPS, get_setup
from benchmark.orchestration.experiments import Experiment
from benchmark.reporting import paper
from benchmark.reporting.cells import TableLine, source_model, summary
from benchmark.store.configuration import record_configuration


def paper_numbers(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """The paper's numbers for the experiment's rows (empty where the paper has none)."""
    return {} if experiment.table.paper is None else paper.BY_TABLE[experiment.table.paper]


def paper_column(experiment: Experiment, setup: str) -> str:
    """The paper's column for a setup: the setup itself, or the target dataset for the probe table."""
    return get_setup(setup).target if experiment.table.paper_by_target else setup


def paper_beside(experiment: Experiment, setup: str) -> bool:
    """Whether a setup's columns include the paper's: its table has numbers for that setup (or target)."""
    return any(paper_column(experiment, setup) in columns for columns in paper_numbers(experiment).values())


def synthetic_context(experiment: Experiment, setups: tuple[str, ...]) -> bool:
    """Whether a table shows a synthetic setup beside the paper's average (``TableSpec.paper_average``)."""
    return (experiment.table.paper_average and bool(paper_numbers(experiment))
            and any(not SETUPS[s].paper for s in setups))


def shows_paper(experiment: Experiment, setups: tuple[str, ...]) -> bool:
    """Whether a table prints any of the paper's numbers beside ours (it then carries ``paper_note``)."""
    return synthetic_context(experiment, setups) or any(paper_beside(experiment, s) for s in setups)


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


def record_commits(records: list[dict[str, Any]]) -> str:
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
                if label in paper_numbers(experiment) and any(line.paper_label == label for line in lines)]
    return " ".join([
        "The paper's numbers are, as the authors' released code (github.com/altndrr/clup) computes them, the best "
        "epoch on the target test split: it validates on the test split every epoch (src/data/image.py: "
        "val_set = test_set) and summarises the maximum (classification.py: "
        "wandb.define_metric(\"val/accuracy\", summary=\"max\")); the paper does not say so (docs/PAPER.md).",
        *([f"The paper's {' and '.join(borrowed)} {'comes' if len(borrowed) == 1 else 'come'} from the CD-FER "
           "benchmark: ResNet-50, best epoch."] if borrowed else []),
        "Ours are the last iterate, with hyperparameters fixed or selected without target labels "
        "(rows whose setting is oracle excepted).",
        "So a gap to the paper is not by itself a shortfall.",
    ])


def source_line(setups: tuple[str, ...], records: list[dict[str, Any]]) -> str:
    """Per source dataset of ``setups``: the accuracy on its source test split of our source models (mean ± std over
    the distinct ones the records used) and, where the authors released one, of theirs."""
    parts = []
    for source in dict.fromkeys(SETUPS[s].source for s in setups):
        ours = {source_model(r): r["source_test_accuracy"] for r in records
                if r.get("source_test_accuracy") is not None and SETUPS[r["setup"]].source == source}
        part = f"{source}: ours {summary(list(ours.values()))}"
        theirs = paper.SOURCE_ACCURACY.get(source)
        parts.append(part if theirs is None else f"{part}, authors' released checkpoint {theirs:.2f}")
    return ("Source models, top-1 accuracy (%) on their source test split (ours: mean ± std over the source models "
            f"used, how many in brackets): {'; '.join(parts)}.")

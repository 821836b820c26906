"""Human-readable reports of run records and calibration results (rich tables on stdout)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from datasets.labels import CLASS_NAMES

stdout = Console()


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def print_run(record: dict[str, Any]) -> None:
    """Accuracy, per-class recall, confusion matrix, pseudo-label stats and time per stage of one run."""
    stdout.print(
        f"[bold]{record['method']}[/] ({record['setting']}) on [bold]{record['setup']}[/] "
        f"{record['source_dataset']} -> {record['target_dataset']}, profile {record['profile']}, seed {record['seed']}"
    )
    stdout.print(
        f"target test accuracy [bold]{_pct(record['accuracy'])}%[/]  mean class accuracy "
        f"{_pct(record['mean_class_accuracy'])}%  (n = {record['n_test']}; source test accuracy "
        f"{_pct(record['source_test_accuracy'])}%)"
    )
    per_class = Table(title="per-class recall (%) and confusion (rows true, columns predicted)")
    per_class.add_column("class")
    per_class.add_column("recall", justify="right")
    for name in CLASS_NAMES:
        per_class.add_column(name[:4], justify="right")
    for name, row in zip(CLASS_NAMES, record["confusion"]):
        per_class.add_row(name, _pct(record["class_accuracy"][name]), *(str(v) for v in row))
    stdout.print(per_class)
    if record.get("pseudo_labels"):
        stats = record["pseudo_labels"]
        stdout.print(
            f"pseudo-labels: kept {stats['kept']} ({100 * stats['kept_fraction']:.1f}%), "
            f"accuracy vs truth (after the fact) {_pct(stats['accuracy_vs_truth'])}%"
        )
    stdout.print("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in record["seconds"].items()))


def print_calibration(result: dict[str, Any]) -> None:
    """The three calibration numbers with their targets."""
    table = Table(title=f"calibration of {result['setup']} ({result['source']} -> {result['target']}, "
                  f"profile {result['profile']}, seed {result['seed']})")
    for column in ("measure", "accuracy %", "target", "holds"):
        table.add_column(column)
    labels = {
        "source_on_source": f"source model ({result['source']}) on {result['source']} test",
        "source_on_target": f"source model ({result['source']}) on {result['target']} test",
        "target_on_target": f"same network trained on {result['target']} labels, on {result['target']} test",
    }
    for name, value in result["accuracy"].items():
        table.add_row(labels[name], _pct(value), result["targets"][name], "yes" if result["passed"][name] else "NO")
    stdout.print(table)


def print_probes(records: list[dict[str, Any]]) -> None:
    """One row per probed backbone: linear-probe accuracy on the target test split, or why it is missing."""
    first = records[0]
    table = Table(title=f"linear probes on {first['target_dataset']} ({first['setup']}, profile {first['profile']}, "
                  f"seed {first['seed']}; trained with target train labels: oracle)")
    for column in ("backbone", "accuracy %", "mean class acc. %", "note"):
        table.add_column(column)
    for r in records:
        if r["available"]:
            table.add_row(r["backbone"], _pct(r["accuracy"]), _pct(r["mean_class_accuracy"]), r["note"])
        else:
            table.add_row(r["backbone"], "-", "-", f"unavailable: {r['note']}")
    stdout.print(table)

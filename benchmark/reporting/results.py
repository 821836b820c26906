"""Tables from the results storage: a pure function of the stored run records (no retraining).

``summary_table`` groups completed runs by (method, setting, setup, profile, hyperparameters, configuration:
profile overrides and code versions, so runs that differ in what ran are never pooled) and reports mean +- std of
top-1 accuracy over seeds; ``summary_markdown`` renders it with the number of seeds and the seeds themselves,
so every cell says what it was computed from. ``to_markdown`` is the one markdown table renderer (leaderboards
use it too).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmark.config.machine import record_machine
from benchmark.store.configuration import record_configuration
from methods.declarations import Setting

#: Row order within a setup: lower bound, source-free methods, UDA methods, upper bound.
SETTING_ORDER = {s.value: order for order, s in enumerate((Setting.SOURCE, Setting.SFDA, Setting.UDA, Setting.ORACLE))}


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: method, setting, setup, profile, seed, accuracy, mean_class_accuracy, hparams (str), machine
    (its label, ``benchmark.config.machine``)."""
    rows = [
        {
            "method": r["method"],
            "setting": r["setting"],
            "setup": r["setup"],
            "profile": r["profile"],
            "seed": r["seed"],
            "accuracy": r["accuracy"],
            "mean_class_accuracy": r["mean_class_accuracy"],
            "hparams": ", ".join(f"{k}={v}" for k, v in sorted(r["hparams"].items())),
            "machine": record_machine(r),
            "configuration": record_configuration(r),
        }
        for r in records
    ]
    columns = ["method", "setting", "setup", "profile", "seed", "accuracy", "mean_class_accuracy", "hparams", "machine",
               "configuration"]
    return pd.DataFrame(rows, columns=columns)


def summary_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean and std (ddof 1; 0 for a single seed) of accuracy per (method, setting, setup, profile, hparams,
    configuration).

    When a configuration was run more than once with the same seed, the latest run of that seed counts.
    """
    frame = records_frame(records)
    keys = ["method", "setting", "setup", "profile", "hparams", "configuration"]  # what ran: never pooled across
    frame = frame.drop_duplicates(subset=[*keys, "seed"], keep="last")
    grouped = frame.groupby(keys, sort=False)
    table = grouped.agg(
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        mca_mean=("mean_class_accuracy", "mean"),
        seeds=("seed", lambda s: ",".join(str(v) for v in sorted(s))),
        n_seeds=("seed", "nunique"),
        machines=("machine", lambda s: "; ".join(sorted(set(s)))),
    ).reset_index()
    table["accuracy_std"] = table["accuracy_std"].fillna(0.0)
    table["_rank"] = table["setting"].map(SETTING_ORDER).fillna(len(SETTING_ORDER))
    table = table.sort_values(["setup", "_rank", "accuracy_mean"]).drop(columns="_rank")
    return table.reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    """A pipe table of a frame's cells as text (no index): the header, a ``---`` rule, a line per row."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


#: The columns of the ``results`` table.
SUMMARY_COLUMNS = ("method", "setting", "setup", "accuracy (%)", "mean class acc. (%)", "seeds", "hyperparameters",
                   "machine", "configuration")


def summary_cells(table: pd.DataFrame) -> pd.DataFrame:
    """A ``summary_table`` as text cells: method, setting, setup, accuracy mean +- std, mean class accuracy,
    seeds (their number and the seeds), hyperparameters, the machines the seeds ran on (``;`` between several),
    the configuration (profile overrides and code, ``benchmark.store.configuration``)."""
    rows = [
        (row.method, row.setting, row.setup, f"{row.accuracy_mean:.2f} +- {row.accuracy_std:.2f}", f"{row.mca_mean:.2f}",
         f"{row.n_seeds} ({row.seeds})", row.hparams or "-", row.machines, row.configuration)
        for row in table.itertuples()
    ]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def summary_markdown(table: pd.DataFrame) -> str:
    """A ``summary_table`` as a markdown table (``summary_cells``)."""
    return to_markdown(summary_cells(table))

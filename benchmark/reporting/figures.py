"""The paper's figures from the results storage (matplotlib + seaborn), a pure function of stored trials.

Each figure is written as PNG and PDF with the data it plots beside it as CSV, so a test (or a reader) can
check the numbers behind every curve. The ``*_data`` functions return those frames; the notebooks in
``notebooks/`` call them and draw the same figures interactively.

- ``fig4_<setup>``: CluP (SwAV) accuracy against Q, purity (solid) vs confidence (dashed), mean +- std over seeds.
- ``class_recall_<setup>``: per-class recall of Table 2's methods (grouped bars).
- ``confusion_<setup>``: row-normalised confusion matrices of Table 1's rows, mean over seeds.
- ``fig3_<setup>``: 2-D embeddings of the target test features (SHOT, CluP (DeepClusterV2), CluP (SwAV)).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.orchestration.experiments import EXPERIMENTS, FIG4_Q  # noqa: E402
from benchmark.reporting.leaderboard import StoredTrials, row_cell, setups_with_results  # noqa: E402
from datasets.labels import CLASS_NAMES  # noqa: E402


def fig4_data(stored: StoredTrials, setup: str, profile: str | None = None) -> pd.DataFrame:
    """Columns score, q, seed, accuracy: one row per stored CluP (SwAV) run of the threshold sweep."""
    experiment = EXPERIMENTS["fig4"]
    rows = []
    for row in experiment.rows:
        for record in row_cell(experiment, row, setup, stored, profile).records:
            rows.append({"score": row.overrides["score"], "q": row.overrides["q"], "seed": record["seed"],
                         "accuracy": record["accuracy"]})
    return pd.DataFrame(rows, columns=["score", "q", "seed", "accuracy"])


def class_recall_data(stored: StoredTrials, setup: str, profile: str | None = None) -> pd.DataFrame:
    """Columns method, seed, class, recall: Table 2's rows, one row per (run, class)."""
    experiment = EXPERIMENTS["table2"]
    rows = [
        {"method": row.label, "seed": record["seed"], "class": name, "recall": record["class_accuracy"][name]}
        for row in experiment.rows
        for record in row_cell(experiment, row, setup, stored, profile).records
        for name in CLASS_NAMES
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "class", "recall"])


def confusion_data(stored: StoredTrials, setup: str, profile: str | None = None) -> dict[str, np.ndarray]:
    """Table 1's row label -> (7, 7) row-normalised confusion (%, true x predicted), mean over seeds."""
    experiment = EXPERIMENTS["table1"]
    matrices = {}
    for row in experiment.rows:
        records = row_cell(experiment, row, setup, stored, profile).records
        if records:
            stacked = np.stack([np.asarray(r["confusion"], dtype=float) for r in records])
            normalised = stacked / np.maximum(stacked.sum(axis=2, keepdims=True), 1.0)
            matrices[row.label] = 100.0 * normalised.mean(axis=0)
    return matrices


def embedding_data(stored: StoredTrials, setup: str, profile: str | None = None) -> pd.DataFrame:
    """Columns method, x, y, label (class name), predicted: Fig. 3's embeddings (first seed of each row)."""
    experiment = EXPERIMENTS["fig3"]
    frames = []
    for row in experiment.rows:
        records = row_cell(experiment, row, setup, stored, profile).records
        if records and "embedding" in records[0]:
            e = records[0]["embedding"]
            xy = np.asarray(e["xy"])
            frames.append(pd.DataFrame({
                "method": row.label, "x": xy[:, 0], "y": xy[:, 1],
                "label": [CLASS_NAMES[i] for i in e["labels"]], "predicted": [CLASS_NAMES[i] for i in e["predictions"]],
            }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["method", "x", "y", "label", "predicted"])


def plot_fig4(data: pd.DataFrame, setup: str) -> plt.Figure:
    """Accuracy vs Q: purity solid, confidence dashed; error bars = std over seeds."""
    figure, axis = plt.subplots(figsize=(5, 3.6))
    for score, style in (("purity", "-"), ("confidence", "--")):
        part = data[data.score == score].groupby("q").accuracy.agg(["mean", "std"]).reindex(FIG4_Q)
        axis.errorbar(part.index, part["mean"], yerr=part["std"].fillna(0.0), linestyle=style, marker="o",
                      capsize=3, label=score)
    axis.set(xlabel="Q (per-class percentile threshold)", ylabel="top-1 accuracy (%)", title=f"CluP (SwAV), {setup}")
    axis.legend()
    figure.tight_layout()
    return figure


def plot_class_recall(data: pd.DataFrame, setup: str) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=data, x="class", y="recall", hue="method", errorbar="sd", ax=axis, order=list(CLASS_NAMES))
    axis.set(xlabel="", ylabel="recall (%)", title=f"per-class recall, {setup}")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_confusions(matrices: dict[str, np.ndarray], setup: str) -> plt.Figure:
    columns = min(4, len(matrices))
    rows = int(np.ceil(len(matrices) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    short = [name[:3] for name in CLASS_NAMES]
    for axis, (label, matrix) in zip(axes.flat, matrices.items()):
        sns.heatmap(matrix, vmin=0, vmax=100, cmap="viridis", cbar=False, annot=False, square=True, ax=axis,
                    xticklabels=short, yticklabels=short)
        axis.set_title(label, fontsize=8)
        axis.tick_params(labelsize=6)
    for axis in list(axes.flat)[len(matrices):]:
        axis.axis("off")
    figure.suptitle(f"confusion (row-normalised %, true x predicted), {setup}", fontsize=9)
    figure.tight_layout()
    return figure


def plot_embeddings(data: pd.DataFrame, setup: str) -> plt.Figure:
    methods = list(dict.fromkeys(data.method))
    figure, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 4), squeeze=False)
    for axis, method in zip(axes.flat, methods):
        part = data[data.method == method]
        sns.scatterplot(data=part, x="x", y="y", hue="label", hue_order=list(CLASS_NAMES), s=6, linewidth=0, ax=axis,
                        legend=axis is axes.flat[-1])
        axis.set(title=method, xticks=[], yticks=[], xlabel="", ylabel="")
    last = axes.flat[-1]
    if last.get_legend() is not None:  # beside the panels, not over the last one's points
        sns.move_legend(last, "upper left", bbox_to_anchor=(1.02, 1.0), title="true class", frameon=False,
                        markerscale=2)
    figure.suptitle(f"t-SNE of target test features, {setup}", fontsize=9)
    figure.tight_layout()
    return figure


def _save(figure: plt.Figure, data: pd.DataFrame, path: Path) -> list[Path]:
    figure.savefig(path.with_suffix(".png"), dpi=150)
    figure.savefig(path.with_suffix(".pdf"), metadata={"CreationDate": None})  # byte-identical on a rerun
    plt.close(figure)
    data.to_csv(path.with_suffix(".csv"), index=False)
    return [path.with_suffix(".png"), path.with_suffix(".pdf"), path.with_suffix(".csv")]


def write_figures(storage: optuna.storages.BaseStorage, out: Path, profile: str | None = None) -> list[Path]:
    """Every figure that has data, as ``<out>/<name>_<setup>.{png,pdf,csv}``; returns the paths written."""
    stored = StoredTrials.load(storage)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for setup in setups_with_results(EXPERIMENTS["fig4"], stored, profile):
        data = fig4_data(stored, setup, profile)
        written += _save(plot_fig4(data, setup), data, out / f"fig4_{setup}")
    for setup in setups_with_results(EXPERIMENTS["table2"], stored, profile):
        data = class_recall_data(stored, setup, profile)
        written += _save(plot_class_recall(data, setup), data, out / f"class_recall_{setup}")
    for setup in setups_with_results(EXPERIMENTS["table1"], stored, profile):
        matrices = confusion_data(stored, setup, profile)
        frame = pd.DataFrame([{"method": m, "true": CLASS_NAMES[i], "predicted": CLASS_NAMES[j], "percent": v[i, j]}
                              for m, v in matrices.items() for i in range(7) for j in range(7)])
        written += _save(plot_confusions(matrices, setup), frame, out / f"confusion_{setup}")
    for setup in setups_with_results(EXPERIMENTS["fig3"], stored, profile):
        data = embedding_data(stored, setup, profile)
        if len(data):
            written += _save(plot_embeddings(data, setup), data, out / f"fig3_{setup}")
    return written

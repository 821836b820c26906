"""The paper's figures from the results storage (matplotlib + seaborn), a pure function of stored trials.

Each figure is written as PNG and PDF with the data it plots beside it as CSV, so a test (or a reader) can
check the numbers behind every curve. The ``*_data`` functions return those frames; the notebooks in
``notebooks/`` call them and draw the same figures interactively.

An experiment declares the figures drawn from its rows (``Experiment.figures``: a ``FigureKind`` and a file
name), written as ``<name>_<setup>.{png,pdf,csv}`` for each setup with results, kind by kind:

- threshold curve: CluP (SwAV) accuracy against Q, purity (solid) vs confidence (dashed), mean +- std over seeds.
- class recall: per-class recall of the experiment's rows (grouped bars).
- confusion: row-normalised confusion matrices of the experiment's rows, mean over seeds.
- embedding: 2-D embeddings of the target test features (first seed of each row that stored one).

Beside them, ``write_figures`` draws the training curves of Table 1's rows (``training_curves_<setup>``): a grid
of methods four across, seeds overlaid, x = epoch; per method the training loss on top and each label-free
validator it reported (``im``) below (docs/PROTOCOL.md, "Training curves"). Runs stored without curves are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.orchestration.experiments import EXPERIMENTS, FIG4_Q, Experiment  # noqa: E402
from benchmark.orchestration.report_specs import FigureKind, FigureSpec  # noqa: E402
from benchmark.reporting.cells import row_cell  # noqa: E402
from benchmark.reporting.leaderboard import setups_with_results  # noqa: E402
from benchmark.reporting.outputs import output_folder  # noqa: E402
from benchmark.store.stored_trials import Storage, StoredTrials  # noqa: E402
from datasets.labels import CLASS_NAMES  # noqa: E402


def drawing(kind: FigureKind) -> Experiment:
    """The first experiment that draws a figure of ``kind`` (the default of the ``*_data`` functions)."""
    for experiment in EXPERIMENTS.values():
        if any(figure.kind is kind for figure in experiment.figures):
            return experiment
    raise LookupError(f"no experiment draws a {kind.value} figure")


def fig4_data(stored: StoredTrials, setup: str, profile: str | None = None,
              experiment: Experiment | None = None) -> pd.DataFrame:
    """Columns score, q, seed, accuracy: one row per stored run of the threshold sweep's rows (each overrides
    ``score`` and ``q``)."""
    experiment = experiment or drawing(FigureKind.THRESHOLD_CURVE)
    rows = []
    for row in experiment.rows:
        for record in row_cell(experiment, row, setup, stored, profile).records:
            rows.append({"score": row.overrides["score"], "q": row.overrides["q"], "seed": record["seed"],
                         "accuracy": record["accuracy"]})
    return pd.DataFrame(rows, columns=["score", "q", "seed", "accuracy"])


def class_recall_data(stored: StoredTrials, setup: str, profile: str | None = None,
                      experiment: Experiment | None = None) -> pd.DataFrame:
    """Columns method, seed, class, recall: the experiment's rows, one row per (run, class)."""
    experiment = experiment or drawing(FigureKind.CLASS_RECALL)
    rows = [
        {"method": row.label, "seed": record["seed"], "class": name, "recall": record["class_accuracy"][name]}
        for row in experiment.rows
        for record in row_cell(experiment, row, setup, stored, profile).records
        for name in CLASS_NAMES
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "class", "recall"])


def confusion_data(stored: StoredTrials, setup: str, profile: str | None = None,
                   experiment: Experiment | None = None) -> dict[str, np.ndarray]:
    """Row label -> (7, 7) row-normalised confusion (%, true x predicted), mean over seeds."""
    experiment = experiment or drawing(FigureKind.CONFUSION)
    matrices = {}
    for row in experiment.rows:
        records = row_cell(experiment, row, setup, stored, profile).records
        if records:
            stacked = np.stack([np.asarray(r["confusion"], dtype=float) for r in records])
            normalised = stacked / np.maximum(stacked.sum(axis=2, keepdims=True), 1.0)
            matrices[row.label] = 100.0 * normalised.mean(axis=0)
    return matrices


def confusion_frame(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """Columns method, true, predicted, percent: the confusion matrices as the CSV beside their figure."""
    return pd.DataFrame([{"method": m, "true": CLASS_NAMES[i], "predicted": CLASS_NAMES[j], "percent": v[i, j]}
                         for m, v in matrices.items() for i in range(7) for j in range(7)])


def embedding_data(stored: StoredTrials, setup: str, profile: str | None = None,
                   experiment: Experiment | None = None) -> pd.DataFrame:
    """Columns method, x, y, label (class name), predicted: the rows' embeddings (first seed of each row)."""
    experiment = experiment or drawing(FigureKind.EMBEDDING)
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
    empty = pd.DataFrame(columns=["method", "x", "y", "label", "predicted"])
    return pd.concat(frames, ignore_index=True) if frames else empty


#: The experiment whose rows' training curves ``write_figures`` draws.
CURVES_EXPERIMENT = "table1"
#: Its file name: ``<name>_<setup>.{png,pdf,csv}``.
CURVES_NAME = "training_curves"
CURVES_COLUMNS = ["method", "seed", "series", "epoch", "value"]


def curves_data(stored: StoredTrials, setup: str, profile: str | None = None,
                experiment: Experiment | None = None) -> pd.DataFrame:
    """Columns method, seed, series, epoch, value: every epoch value of every series the experiment's rows'
    runs reported (``record["curves"]``; ``epoch`` is Optuna's step, from 0). Runs without curves (stored
    before curves were recorded, or a method that trains nothing) are skipped; an epoch a series lacks is
    left out."""
    experiment = experiment or EXPERIMENTS[CURVES_EXPERIMENT]
    rows = [
        {"method": row.label, "seed": record["seed"], "series": series, "epoch": epoch, "value": value}
        for row in experiment.rows if row.kind == "run"
        for record in row_cell(experiment, row, setup, stored, profile).records
        for series, values in (record.get("curves") or {}).items()
        for epoch, value in enumerate(values) if value is not None
    ]
    return pd.DataFrame(rows, columns=CURVES_COLUMNS)


#: Methods per row of the training-curves grid (so the figure reads at page width).
CURVES_COLUMNS_PER_ROW = 4


def plot_curves(data: pd.DataFrame, setup: str) -> plt.Figure:
    """A grid of methods, ``CURVES_COLUMNS_PER_ROW`` across: per method one panel per series (``loss`` on top),
    one line per seed; the seeds' legend in the first spare cell (else below the grid)."""
    methods = list(dict.fromkeys(data.method))
    series = sorted(set(data.series), key=lambda name: (name != "loss", name))
    columns = min(CURVES_COLUMNS_PER_ROW, len(methods))
    grid_rows = -(-len(methods) // columns)
    figure = plt.figure(figsize=(2.0 * columns, 1.3 * len(series) * grid_rows + 0.6), layout="constrained")
    grid = figure.add_gridspec(grid_rows, columns)
    seeds = sorted(set(data.seed))
    colours = dict(zip(seeds, sns.color_palette("colorblind", len(seeds))))
    handles: list[Any] = []
    for index, method in enumerate(methods):
        cell = grid[divmod(index, columns)].subgridspec(len(series), 1)
        top = None
        for line, name in enumerate(series):
            axis = figure.add_subplot(cell[line], sharex=top)
            top = top or axis
            part = data[(data.method == method) & (data.series == name)]
            for seed, points in part.groupby("seed"):
                axis.plot(points.epoch, points.value, marker=".", markersize=3, linewidth=1, color=colours[seed],
                          label=f"seed {seed}")
            if line == 0:
                axis.set_title(method, fontsize=8)
            if index % columns == 0:
                axis.set_ylabel("training loss" if name == "loss" else f"{name}\n(target train, no labels)", fontsize=7)
            if line == len(series) - 1:
                axis.set_xlabel("epoch", fontsize=7)
            else:
                axis.tick_params(labelbottom=False)
            axis.tick_params(labelsize=6)
            handles = handles or axis.get_legend_handles_labels()[0]
    if len(seeds) > 1 and handles:
        labels = [handle.get_label() for handle in handles]
        if len(methods) < grid_rows * columns:
            spare = figure.add_subplot(grid[divmod(len(methods), columns)])
            spare.axis("off")
            spare.legend(handles, labels, loc="center", fontsize=7, frameon=False)
        else:
            figure.legend(handles, labels, loc="outside lower center", ncol=len(seeds), fontsize=7, frameon=False)
    figure.suptitle(f"training curves, {setup}", fontsize=9)
    return figure


def draw_curves(stored: StoredTrials, out: Path, profile: str | None = None,
                experiment: Experiment | None = None, *, images: bool = True) -> list[Path]:
    """The training curves of ``experiment``'s rows (default Table 1) on each setup where a run reported any,
    as ``<out>/training_curves_<setup>.{png,pdf,csv}`` (only the CSV unless ``images``); returns the paths written."""
    experiment = experiment or EXPERIMENTS[CURVES_EXPERIMENT]
    written: list[Path] = []
    for setup in setups_with_results(experiment, stored, profile):
        data = curves_data(stored, setup, profile, experiment)
        if len(data):
            plot = partial(plot_curves, data, setup) if images else None
            written += _save(data, out / f"{CURVES_NAME}_{setup}", plot)
    return written


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
    """Per-class recall of each row, grouped bars (error bars: std over seeds)."""
    figure, axis = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=data, x="class", y="recall", hue="method", errorbar="sd", ax=axis, order=list(CLASS_NAMES))
    axis.set(xlabel="", ylabel="recall (%)", title=f"per-class recall, {setup}")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_confusions(matrices: dict[str, np.ndarray], setup: str) -> plt.Figure:
    """One row-normalised confusion heatmap per row, four across."""
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
    """One 2-D embedding scatter per row, coloured by true class; the legend beside the last panel."""
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


def _save(data: pd.DataFrame, path: Path, plot: Callable[[], plt.Figure] | None) -> list[Path]:
    """``data`` as ``path``.csv and, unless ``plot`` is None, the figure it draws as ``path``.png and .pdf."""
    written = []
    if plot is not None:
        figure = plot()
        figure.savefig(path.with_suffix(".png"), dpi=150)
        figure.savefig(path.with_suffix(".pdf"), metadata={"CreationDate": None})  # byte-identical on a rerun
        plt.close(figure)
        written += [path.with_suffix(".png"), path.with_suffix(".pdf")]
    data.to_csv(path.with_suffix(".csv"), index=False)
    return [*written, path.with_suffix(".csv")]


@dataclass(frozen=True)
class Drawer:
    """How a kind of figure is drawn: its data from the storage, the figure, and the CSV frame of its data."""

    data: Callable[[StoredTrials, str, str | None, Experiment], Any]
    plot: Callable[[Any, str], plt.Figure]
    frame: Callable[[Any], pd.DataFrame] = lambda data: data


#: The drawer of each kind of figure, in the order ``write_figures`` draws them.
DRAWERS: dict[FigureKind, Drawer] = {
    FigureKind.THRESHOLD_CURVE: Drawer(fig4_data, plot_fig4),
    FigureKind.CLASS_RECALL: Drawer(class_recall_data, plot_class_recall),
    FigureKind.CONFUSION: Drawer(confusion_data, plot_confusions, confusion_frame),
    FigureKind.EMBEDDING: Drawer(embedding_data, plot_embeddings),
}


def draw(experiment: Experiment, figure: FigureSpec, stored: StoredTrials, out: Path,
         profile: str | None = None, *, images: bool = True) -> list[Path]:
    """``figure`` of ``experiment`` on each setup with results (and data to plot), only its CSV unless ``images``;
    returns the paths written."""
    drawer = DRAWERS[figure.kind]
    written: list[Path] = []
    for setup in setups_with_results(experiment, stored, profile):
        data = drawer.data(stored, setup, profile, experiment)
        frame = drawer.frame(data)
        if len(frame):
            plot = partial(drawer.plot, data, setup) if images else None
            written += _save(frame, out / f"{figure.name}_{setup}", plot)
    return written


def write_figures(storage: Storage, out: Path, profile: str | None = None, *, images: bool = True) -> list[Path]:
    """Every figure that has data, as ``<out>/<name>_<setup>.{png,pdf,csv}`` (the experiments' figures, then
    the training curves); returns the paths written. ``images=False`` writes only the CSVs: the numbers, without
    the drawing, which is most of the time (about 30 s of the committed records' 35 s on 2 cores)."""
    stored = StoredTrials.load(storage)
    output_folder(out)
    written: list[Path] = []
    for kind in DRAWERS:
        for experiment in EXPERIMENTS.values():
            for figure in experiment.figures:
                if figure.kind is kind:
                    written += draw(experiment, figure, stored, out, profile, images=images)
    return written + draw_curves(stored, out, profile, images=images)

"""The CluP paper's reported numbers (BMVC 2022, arXiv 2210.05246), printed beside ours in leaderboards.

Copied from the paper's Tables 1-4 (the project's docs/PAPER.md). Top-1 accuracy or
per-class recall, in percent, on the target test split. Keys are the leaderboard row labels of
``benchmark.orchestration.experiments`` and the setup names of ``benchmark.config.setups``. Also the source
accuracies of the authors' released source models, by source dataset.
"""

from __future__ import annotations

from typing import Any

from benchmark.config.setups import PAPER_SETUPS


def _by_setup(*values: float) -> dict[str, float]:
    return dict(zip(PAPER_SETUPS, values, strict=True))


#: Table 1 (the UDA rows come from the CD-FER benchmark, ResNet-50; the paper's own rows use ResNet-18).
TABLE1: dict[str, dict[str, float]] = {
    "SHOT-IM": _by_setup(53.52, 49.51, 53.13, 49.44),
    "SHOT": _by_setup(54.12, 49.44, 53.51, 49.36),
    "CluP (DeepClusterV2)": _by_setup(62.56, 50.47, 65.43, 53.83),
    "CluP (SwAV)": _by_setup(65.00, 52.51, 66.60, 53.71),
    "CDAN": _by_setup(58.50, 48.61, 63.74, 54.71),
}

#: Table 2: per-class recall on raf_fer2013, class order of ``datasets.labels.CLASS_NAMES``.
TABLE2_RAF_FER2013: dict[str, list[float]] = {
    "SHOT-IM": [28.29, 45.05, 9.86, 75.97, 56.12, 40.66, 71.96],
    "SHOT": [28.18, 43.24, 10.25, 75.59, 53.53, 40.18, 74.37],
    "CluP (DeepClusterV2)": [29.44, 45.05, 2.83, 83.15, 77.70, 34.72, 76.65],
    "CluP (SwAV)": [37.89, 30.63, 13.57, 80.72, 50.85, 44.51, 74.49],
}

#: Table 3: linear probe on frozen backbones, by target dataset.
TABLE3: dict[str, dict[str, float]] = {
    "ImageNet": {"expw": 54.45, "fer2013": 36.38},
    "Source": {"expw": 66.80, "fer2013": 56.99},
    "DeepClusterV2": {"expw": 60.54, "fer2013": 58.10},
    "SwAV": {"expw": 69.13, "fer2013": 60.90},
}

#: Table 4: backbone x pseudo-label score.
TABLE4: dict[str, dict[str, float]] = {
    "Source + confidence": _by_setup(56.43, 48.36, 59.79, 50.47),
    "Source + purity": _by_setup(56.54, 47.34, 61.18, 54.29),
    "SwAV + confidence": _by_setup(62.88, 51.27, 63.22, 50.68),
    "SwAV + purity": _by_setup(65.00, 52.51, 66.60, 53.71),
}


#: The paper's numbers by the table that reports them (``TableSpec.paper``): row label -> column (setup, or target
#: dataset for the probe table) -> number; Table 2's are per-class recalls (``CLASS_NAMES`` order), on raf_fer2013.
BY_TABLE: dict[str, dict[str, dict[str, Any]]] = {
    "Table 1": TABLE1,
    "Table 2": {label: {"raf_fer2013": recall} for label, recall in TABLE2_RAF_FER2013.items()},
    "Table 3": TABLE3,
    "Table 4": TABLE4,
}

#: Rows the paper's Table 1 borrows from the CD-FER benchmark (Chen et al., TPAMI 2021; ResNet-50, best test
#: epoch): our row label -> the paper's.
CD_FER_ROWS: dict[str, str] = {"CDAN": "CADA"}

#: The authors' source models' accuracy (%) on their source test split, by source dataset: the checkpoints they
#: released, ``resnet18_afe-0.9286.pt`` and ``resnet18_rafdb-0.839.pt`` (github.com/altndrr/clup, models/source/).
SOURCE_ACCURACY: dict[str, float] = {"afe": 92.86, "rafdb": 83.90}


def paper_value(table: dict[str, dict[str, float]], label: str, column: str) -> float | None:
    """The paper's number for a row and a column (setup or target dataset), or None where it has none."""
    return table.get(label, {}).get(column)


def paper_average(table: dict[str, dict[str, float]], label: str) -> float | None:
    """Mean of the paper's numbers of a row over its columns (None when the row is not in the paper)."""
    values = list(table.get(label, {}).values())
    return sum(values) / len(values) if values else None

"""What an experiment declares for reporting: its leaderboard's kind of table and the figures it draws, so
that ``benchmark.reporting`` renders any experiment without knowing its name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: The label of the source-only row (the lower bound every adaptation is compared with).
SOURCE_ONLY = "Source only"
#: The label of the paper's method with its best backbone (the default reference row).
PAPER_METHOD = "CluP (SwAV)"


class TableKind(str, Enum):
    """The columns of an experiment's leaderboard."""

    #: a line per row and search, a mean ± std accuracy cell per setup
    ACCURACY = "accuracy"
    #: per setup, a line per row with its mean recall of each class
    CLASS_RECALL = "class_recall"


@dataclass(frozen=True)
class TableSpec:
    """What an experiment's leaderboard shows (``benchmark.reporting.leaderboard``).

    Attributes:
        kind: its columns.
        paper: the paper's table that reports these rows (``Table 1``...), printed beside ours; None: none.
        paper_by_target: the paper reports by target dataset, not by setup (the probe table): a setup shows the
            paper's number of its target wherever the paper has one, synthetic setups included.
        paper_average: beside a synthetic setup, a column with the paper's average over its real setups.
        baseline, reference: the labels of the two rows every line of an accuracy table is compared with, paired
            by seed and test image (``benchmark.reporting.statistics``); a comparison is shown only where the
            experiment has a row of that label. The defaults are Table 1's lower bound and the paper's method;
            ``leaderboard --reference`` overrides ``reference``.
    """

    kind: TableKind = TableKind.ACCURACY
    paper: str | None = None
    paper_by_target: bool = False
    paper_average: bool = False
    baseline: str | None = SOURCE_ONLY
    reference: str | None = PAPER_METHOD


class FigureKind(str, Enum):
    """The figures ``benchmark.reporting.figures`` draws, in the order it draws them."""

    #: accuracy against CluP's threshold Q, one curve per pseudo-label score (rows overriding ``score`` and ``q``)
    THRESHOLD_CURVE = "threshold_curve"
    #: per-class recall of each row (grouped bars)
    CLASS_RECALL = "class_recall"
    #: row-normalised confusion matrix of each row
    CONFUSION = "confusion"
    #: 2-D embedding of the target test features of each row (rows with ``embedding``)
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class FigureSpec:
    """A figure an experiment draws, written as ``<name>_<setup>.{png,pdf,csv}``."""

    kind: FigureKind
    name: str

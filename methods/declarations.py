"""What a method declares about itself, without running it: the data it may see (``Setting``) and its
hyperparameters (``HParam``: a default, the ``SearchSpace`` a search draws from, the ``Range`` it accepts).

Plain data, no torch: the store, the sweeps and the reports read declarations without importing a network.
A plugin imports these names from ``methods.api``, which re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["HParam", "Range", "SearchChoice", "SearchFloat", "SearchInt", "SearchSpace", "Setting", "sgd_hparams"]


class Setting(str, Enum):
    """What data a method may see besides the source model.

    SFDA: the unlabelled target train split. UDA: also the labelled source train split.
    SOURCE: nothing (the source model as it is). ORACLE: the labelled target train split (an upper bound,
    always reported as oracle).
    """

    SFDA = "sfda"
    UDA = "uda"
    SOURCE = "source"
    ORACLE = "oracle"


@dataclass(frozen=True)
class Range:
    """The values a numeric hyperparameter may take: ``low`` and ``high`` bounds (None: unbounded), each
    inclusive or not. It is wider than a search's distribution: it says what the method can run with at all.

    ``Range(0, 1, high_inclusive=False)`` is 0 <= x < 1; ``Range.at_least(1)`` is x >= 1; ``Range.above(0)``
    is x > 0. Every float hyperparameter must also be finite (``methods.registry.resolve_hparams``).
    """

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    @classmethod
    def at_least(cls, low: float) -> Range:
        """x >= ``low``."""
        return cls(low=low)

    @classmethod
    def above(cls, low: float) -> Range:
        """x > ``low``."""
        return cls(low=low, low_inclusive=False)

    def __contains__(self, value: object) -> bool:
        """Whether ``value`` is a number (not a bool, not NaN) within the bounds."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and not self.high_inclusive)))

    def describe(self, name: str) -> str:
        """The range as a condition on ``name``: ``lr > 0``, ``0 <= q < 1``, ``cls_par = 0``."""
        low = f"{self.low:g} {'<=' if self.low_inclusive else '<'} " if self.low is not None else ""
        high = f" {'<=' if self.high_inclusive else '<'} {self.high:g}" if self.high is not None else ""
        if self.low is not None and self.low == self.high and self.low_inclusive and self.high_inclusive:
            return f"{name} = {self.low:g}"
        if low and not high:
            return f"{name} {'>=' if self.low_inclusive else '>'} {self.low:g}"
        return f"{low}{name}{high}" if low or high else f"{name}: any number"


@dataclass(frozen=True)
class SearchFloat:
    """A search draws a float uniformly from [``low``, ``high``] (log-uniformly when ``log``; ``step``: on a grid
    of that step from ``low``). The store turns it into Optuna's ``FloatDistribution``; methods need no Optuna."""

    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class SearchInt:
    """A search draws an integer from ``low`` to ``high`` inclusive (log-uniformly when ``log``; ``step``
    apart)."""

    low: int
    high: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class SearchChoice:
    """A search draws one of ``choices`` (strings, numbers, booleans or None)."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))


#: The space a search draws one hyperparameter from.
SearchSpace = SearchFloat | SearchInt | SearchChoice


@dataclass(frozen=True)
class HParam:
    """One declared hyperparameter: its default, the ``SearchSpace`` a search draws from, a help line and,
    for a number, the ``Range`` of values the method accepts (checked when the run is planned, before any data
    is loaded; None: any finite number)."""

    default: Any
    distribution: SearchSpace | None = None
    help: str = ""
    valid: Range | None = None


def sgd_hparams(
    lr: float,
    lr_range: tuple[float, float],
    epochs_range: tuple[int, int],
    batch_size: int,
    *,
    lr_help: str,
    batch_help: str = "images per step",
    backbone: str = "backbone",
) -> dict[str, HParam]:
    """The optimiser declarations every SGD-trained adaptation method shares (the rest are its own).

    Args:
        lr: default learning rate of the head (the backbone trains at ``lr * backbone_lr_mult``).
        lr_range: (low, high) of the log-uniform lr a search draws.
        epochs_range: (low, high) of the epochs a search draws; the default is 15 passes.
        batch_size: default images per step (not searched).
        lr_help: the lr's help line (which modules train at ``lr``).
        batch_help: the batch size's help line.
        backbone: how the help line names the backbone.
    Returns:
        ``lr`` (> 0), ``backbone_lr_mult`` (default 0.1, > 0), ``epochs`` (default 15, >= 1) and ``batch_size``
        (>= 1).
    """
    return {
        "lr": HParam(lr, SearchFloat(*lr_range, log=True), lr_help, Range.above(0)),
        "backbone_lr_mult": HParam(
            0.1, SearchFloat(0.01, 1.0, log=True), f"{backbone} lr multiplier", Range.above(0)
        ),
        "epochs": HParam(15, SearchInt(*epochs_range), "passes over the target train split", Range.at_least(1)),
        "batch_size": HParam(batch_size, None, batch_help, Range.at_least(1)),
    }

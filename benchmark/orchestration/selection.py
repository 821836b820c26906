"""Selection rules: how a table line's hyperparameters were chosen (DomainBed's ``SelectionMethod``).

``FixedHyperparameters`` (the paper's, or a grid's departures from them), ``LinearProbe`` (a backbone probe),
``BestValidator(name)`` (a search selected by an unsupervised validator on the target train split) and
``BestTestAccuracy`` (a search selected by target test labels: an oracle). A rule gives the text of the
tables' selection column and the objective its trials report; ``search_rule`` is the one parser of objective
strings (``accuracy``, ``validator:NAME``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar


class SelectionRule(ABC):
    """How a table line's hyperparameters were chosen (DomainBed's ``SelectionMethod``).

    Attributes:
        oracle: whether the rule looks at target labels (its line is reported as oracle, never as a result).
    """

    oracle: ClassVar[bool] = False

    @property
    @abstractmethod
    def display(self) -> str:
        """The rule as the tables' selection column prints it."""

    @property
    def objective(self) -> str:
        """What each trial reports to its study (``run_method``'s ``objective``: ``accuracy`` or
        ``validator:NAME``); a search selects the trial that maximises it."""
        return "accuracy"

    def value(self, record: dict[str, Any]) -> float:
        """The objective of a run record: the number its trial reports."""
        return float(record["accuracy"])


@dataclass(frozen=True)
class FixedHyperparameters(SelectionRule):
    """No selection: the paper's (or the method's published) hyperparameters, but for the ``departures``
    (name, value) a grid sets (e.g. Fig. 4's ``q``)."""

    departures: tuple[tuple[str, Any], ...] = ()

    @property
    def display(self) -> str:
        departures = ", ".join(f"{name}={value}" for name, value in self.departures)
        return "fixed: paper hyperparameters" + (f" but {departures}" if departures else "")


@dataclass(frozen=True)
class LinearProbe(SelectionRule):
    """A linear probe trained on a frozen backbone with the target train labels (an oracle by design)."""

    oracle: ClassVar[bool] = True

    @property
    def display(self) -> str:
        return "linear probe (target train labels)"


@dataclass(frozen=True)
class BestValidator(SelectionRule):
    """A search selected by the unsupervised validator ``name`` on the unlabelled target train split (honest)."""

    name: str

    @property
    def objective(self) -> str:
        return f"validator:{self.name}"

    @property
    def display(self) -> str:
        return f"search: best {self.name.upper()} (unsupervised)"

    def value(self, record: dict[str, Any]) -> float:
        if self.name not in record["validators"]:
            raise ValueError(f"unknown objective {self.objective!r}; expected accuracy or "
                             f"validator:{'|'.join(record['validators'])}")
        return float(record["validators"][self.name])


@dataclass(frozen=True)
class BestTestAccuracy(SelectionRule):
    """A search selected by target test accuracy: an oracle, an upper bound on what selection can leak."""

    oracle: ClassVar[bool] = True

    @property
    def display(self) -> str:
        return "oracle: best target test accuracy"


def search_rule(objective: str) -> SelectionRule:
    """The rule of a search whose trials report ``objective`` (``accuracy`` or ``validator:NAME``)."""
    if objective == "accuracy":
        return BestTestAccuracy()
    kind, _, name = objective.partition(":")
    if kind != "validator" or not name:
        raise ValueError(f"unknown objective {objective!r}; expected accuracy or validator:NAME")
    return BestValidator(name)

"""Selection rules: how a table line's hyperparameters were chosen (DomainBed's ``SelectionMethod``).

``FixedHyperparameters`` (the paper's, or a grid's departures from them), ``LinearProbe`` (a backbone probe),
``BestValidator(name)`` (the trial of a search that an unsupervised validator on the target train split rates
highest) and ``BestTestAccuracy`` (the trial with the best target test accuracy: an oracle). A search runs once;
every rule of its table is applied afterwards to the same stored trials (``SelectionRule.select``), so the rows a
validator and the oracle pick differ by selection alone, never by sampling luck.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from methods.core.validators import VALIDATORS


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
    def tag(self) -> str:
        """A word for the rule in a search line's label (``SHOT (search, IM)``)."""
        return "oracle" if self.oracle else "fixed"

    def value(self, record: dict[str, Any]) -> float:
        """What the rule maximises over a search's run records (default: the target test accuracy, %)."""
        return float(record["accuracy"])

    def select(self, records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
        """The record of ``records`` (one search's trials) that maximises ``value``; on a tie the earliest
        trial (lowest ``record["trial"]["number"]``); None when there is none."""
        if not records:
            return None
        return max(sorted(records, key=_trial_number), key=self.value)


def _trial_number(record: dict[str, Any]) -> int:
    return int(record.get("trial", {}).get("number", 0))


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
    """The trial that the unsupervised validator ``name`` rates highest on the unlabelled target train split
    (``methods.core.validators``; honest)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in VALIDATORS:
            raise ValueError(f"unknown validator {self.name!r}; known: {', '.join(VALIDATORS)}")

    @property
    def display(self) -> str:
        return f"search: best {self.name.upper()} (unsupervised)"

    @property
    def tag(self) -> str:
        return self.name.upper()

    def value(self, record: dict[str, Any]) -> float:
        return float(record["validators"][self.name])


@dataclass(frozen=True)
class BestTestAccuracy(SelectionRule):
    """The trial with the best target test accuracy: an oracle, an upper bound on what selection can leak."""

    oracle: ClassVar[bool] = True

    @property
    def display(self) -> str:
        return "oracle: best target test accuracy"


#: The rules a search's table lines apply, in order: every unsupervised validator, then the oracle.
SEARCH_RULES: tuple[SelectionRule, ...] = (*(BestValidator(name) for name in VALIDATORS), BestTestAccuracy())

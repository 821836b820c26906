"""The one module a method plugin imports: the method interface, what a method is given, and the engine
helpers a method needs (docs/PLUGINS.md).

A method declares its ``name``, its ``setting`` and its hyperparameters once (default + the space a search
draws from, DomainBed style). ``adapt`` receives the source model and only the data its
setting allows, and returns the classifier that is evaluated on the target test split. It also declares what the
harness needs to know without running it: whether it needs the source model, which SSL backbones it uses, and its
cost model for ``bench`` and ``sweep --plan`` (``adaptation_cost``, ``bench_step``: ``methods.core.cost``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.config.profiles import Profile
from methods.core.cost import BenchStep, CostTerm, TrainingStep
from methods.core.data import normalise, standardise, to_unit
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages
from methods.core.losses import mean_entropy
from methods.core.training import EpochEnd, EpochReport, epoch_reporter, optimise, run_epochs

__all__ = [
    "BenchStep", "CostTerm", "HParam", "LabelledImages", "Method", "OracleData", "Range", "RunContext", "SearchChoice",
    "SearchFloat", "SearchInt", "SearchSpace", "Setting", "SourceFreeData", "TrainingStep", "UdaData",
    "UnlabelledImages", "mean_entropy", "normalise", "optimise", "run_epochs", "sgd_hparams", "standardise", "to_unit",
]


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


@dataclass
class RunContext:
    """What the harness hands every method besides data.

    Attributes:
        device: where tensors live and models train.
        profile: the run's profile (image size, batch sizes...).
        seed: the method's derived seed (already applied to the global RNGs).
        generator: CPU generator for data order, seeded from ``seed``.
        stats: a dict the method may fill for the run record. A method that pseudo-labels puts its
            ``methods.core.pseudo_labels.Selection`` under ``"pseudo_labels"``; the harness scores it against
            the truth after ``adapt`` returns. A method that starts from an artifact backbone puts the
            artifact's folder name under ``"backbone_artifact"``.
        ssl_backbone: the harness's pretraining service: ``ssl_backbone("swav")`` returns the
            ``benchmark.services.pretrain.PretrainedBackbone`` pretrained with that method on this run's unlabelled
            target train split (built once, then cached); the global random streams are left as they were.
            None where the harness offers none.
        report: where ``report_epoch`` sends a training curve: the harness's sink, which puts the ``loss`` series
            into the running Optuna trial's intermediate values (``step`` = epoch) and every series into its
            ``curves`` attribute and the run record (docs/PROTOCOL.md, "Training curves"). None (outside the
            harness, e.g. a plugin's own tests): reporting does nothing and nothing is computed for it.
    """

    device: torch.device
    profile: Profile
    seed: int
    generator: torch.Generator
    stats: dict[str, Any] = field(default_factory=dict)
    ssl_backbone: Callable[[str], Any] | None = None
    report: EpochReport | None = None

    def report_epoch(self, epoch: int, values: Mapping[str, float]) -> None:
        """Report one epoch's values, e.g. ``ctx.report_epoch(epoch, {"loss": 0.41, "im": 1.2})``: epochs count
        from 0, ``loss`` is the training loss, other names are label-free validators (never a score computed
        with target labels, except in an oracle run). A no-op when nothing listens (``report`` is None)."""
        if self.report is not None:
            self.report(epoch, values)

    def epoch_reporter(self, model: nn.Module, images: torch.Tensor) -> EpochEnd | None:
        """The ``on_epoch_end`` of ``run_epochs`` that reports each epoch's mean training loss and the ``im``
        validator of ``model`` on a fixed subset of the target train ``images`` (``methods.core.training.
        epoch_reporter``; it draws no random number and leaves the model as it was). One line per method::

            run_epochs(..., on_epoch_end=ctx.epoch_reporter(model, data.target.images))

        None (no callback, nothing computed) when nothing listens.
        """
        if self.report is None:
            return None
        return epoch_reporter(self.report_epoch, model, images, self.profile.eval_batch_size)


class Method(ABC):
    """Base class of adaptation methods; a subclass is registered as an entry point (docs/PLUGINS.md).

    ``label`` is the method's name in tables and figures; a class that declares a ``name`` but no ``label``
    is labelled by its name. ``version`` is part of every run's identity: bump it when a change of the method's
    code changes its results, so stored runs of the old code no longer count as done.

    What the harness asks without running the method: ``needs_source_model`` and ``ssl_objectives`` (the
    artifacts a run needs), ``adaptation_cost`` and ``bench_step`` (its projected device time), ``bench_projected``
    and ``describe_hparams`` (the paper jobs ``bench`` projects).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    setting: ClassVar[Setting]
    hparams_spec: ClassVar[dict[str, HParam]] = {}
    version: ClassVar[int] = 1
    #: Whether a run needs the source model of its setup (the harness trains it once, then caches it).
    needs_source_model: ClassVar[bool] = True
    #: The named source recipe (``benchmark.config.profiles.SOURCE_RECIPES``: network and training) of the
    #: method's release, used where a profile runs each method on its own published recipe
    #: (``Profile.source_per_method``, the ``paper`` profile); None: the profile's own recipe.
    source_recipe: ClassVar[str | None] = None
    #: Whether ``bench`` projects a run of this method on each paper setup, at the profile's hyperparameters.
    bench_projected: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "label" not in cls.__dict__:
            cls.label = cls.name

    def __init__(self, hparams: dict[str, Any]) -> None:
        """``hparams``: the run's resolved hyperparameters (``methods.registry.resolve_hparams``)."""
        self.hparams = hparams

    @classmethod
    def ssl_objectives(cls, hparams: dict[str, Any]) -> tuple[str, ...]:
        """The self-supervised objectives whose pretrained backbones a run with ``hparams`` uses (through
        ``RunContext.ssl_backbone``); their recipes are part of the run's identity (``benchmark.store.identity``)."""
        return ()

    @classmethod
    def describe_hparams(cls, hparams: dict[str, Any]) -> str:
        """The hyperparameters that set a run of ``hparams`` apart, in words for a projected job's name (CluP:
        ``backbone swav``); empty when none."""
        return ""

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm] | None:
        """The device time of ``adapt`` with ``hparams`` at ``profile`` on ``n_target`` target train images, as
        ``CostTerm`` s of timed stages (in the order they run; [] = free); None: not modelled (the default). The
        harness adds the features of the target train and test splits that every run extracts."""
        return None

    @classmethod
    def bench_step(cls, hparams: dict[str, Any], profile: Profile) -> BenchStep | None:
        """A training step of this method's own that ``bench`` times as a stage named ``name`` (one whose cost the
        ``source`` stage does not model), built with ``hparams`` (the profile's) at ``profile``; None (the default):
        no stage of its own."""
        return None

    @abstractmethod
    def adapt(self, source_model: nn.Module, data: Any, ctx: RunContext) -> nn.Module:
        """Return the adapted ``methods.core.models.Classifier`` ((B, 3, S, S) normalised float -> (B, 7) logits).

        ``data`` is exactly what the method's setting allows (``methods.core.inputs``): None for ``source``,
        ``SourceFreeData`` for ``sfda``, ``UdaData`` for ``uda``, ``OracleData`` for ``oracle``.
        """

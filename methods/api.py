"""The one module a method plugin imports: the method interface, what a method is given, and the engine
helpers a method needs (docs/PLUGINS.md).

A method declares its ``name``, its ``setting`` and its hyperparameters once (default + the space a search
draws from, DomainBed style). ``adapt`` receives the source model and only the data its
setting allows, and returns the classifier that is evaluated on the target test split. It also declares what the
harness needs to know without running it: whether it needs the source model, which SSL backbones it uses, and its
cost model for ``bench`` and ``sweep --plan`` (``adaptation_cost``, ``bench_step``: ``methods.core.cost``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.config.profiles import Profile
from methods.core.cost import BenchStep, CostTerm, TrainingStep
from methods.core.data import normalise, standardise, to_unit
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages
from methods.core.losses import mean_entropy
from methods.core.training import EpochEnd, EpochReport, epoch_reporter, optimise, run_epochs
from methods.declarations import HParam, Range, SearchChoice, SearchFloat, SearchInt, SearchSpace, Setting, sgd_hparams

__all__ = [
    "BenchStep", "CostTerm", "HParam", "LabelledImages", "Method", "OracleData", "Range", "RunContext", "SearchChoice",
    "SearchFloat", "SearchInt", "SearchSpace", "Setting", "SourceFreeData", "TrainingStep", "UdaData",
    "UnlabelledImages", "mean_entropy", "normalise", "optimise", "run_epochs", "sgd_hparams", "standardise", "to_unit",
]


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

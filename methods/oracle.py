"""Oracle: the source network trained with ground-truth target train labels (an upper bound, never a method)."""

from __future__ import annotations

from typing import Any

from torch import nn

from benchmark.config.paths import imagenet_weights
from benchmark.config.profiles import Profile
from methods.api import CostTerm, Method, RunContext, Setting
from methods.core.inputs import OracleData
from methods.core.models import build_classifier
from methods.core.training import train_supervised


class Oracle(Method):
    """Same architecture, initialisation and recipe as the source model, trained on labelled target train."""

    name = "oracle"
    label = "Oracle (target labels)"
    setting = Setting.ORACLE
    hparams_spec = {}

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """The source recipe's training, on the target train split."""
        return [CostTerm("source", n_target, profile.source.epochs, profile.source.batch_size)]

    def adapt(self, source_model: nn.Module, data: OracleData, ctx: RunContext) -> nn.Module:
        profile = ctx.profile
        model = build_classifier(profile.arch, profile.stem, profile.width, profile.source.head, imagenet_weights(profile))
        model = model.to(data.target.images.device)
        train_supervised(model, data.target.images, data.target.labels, profile.source, ctx.generator, "oracle",
                         on_epoch_end=ctx.epoch_reporter(model, data.target.images))
        return model

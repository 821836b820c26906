"""Oracle: the source network trained with ground-truth target train labels (an upper bound, never a method)."""

from __future__ import annotations

from torch import nn

from benchmark.config.paths import imagenet_weights
from methods.api import Method, RunContext, Setting
from methods.core.inputs import OracleData
from methods.core.models import build_classifier
from methods.core.training import train_supervised


class Oracle(Method):
    """Same architecture, initialisation and recipe as the source model, trained on labelled target train."""

    name = "oracle"
    label = "Oracle (target labels)"
    setting = Setting.ORACLE
    hparams_spec = {}

    def adapt(self, source_model: nn.Module, data: OracleData, ctx: RunContext) -> nn.Module:
        profile = ctx.profile
        model = build_classifier(profile.arch, profile.stem, profile.width, profile.source.head, imagenet_weights(profile))
        model = model.to(data.target.images.device)
        train_supervised(model, data.target.images, data.target.labels, profile.source, ctx.generator, "oracle",
                         on_epoch_end=ctx.epoch_reporter(model, data.target.images))
        return model

"""Oracle: the source network trained with ground-truth target train labels (an upper bound, never a method)."""

from __future__ import annotations

from torch import nn

from benchmark.models import build_classifier
from benchmark.source import imagenet_weights
from benchmark.training import train_supervised
from methods.base import Method, RunContext, Setting
from methods.inputs import OracleData
from methods.registry import register


@register
class Oracle(Method):
    """Same architecture, initialisation and recipe as the source model, trained on labelled target train."""

    name = "oracle"
    setting = Setting.ORACLE
    hparams_spec = {}

    def adapt(self, source_model: nn.Module, data: OracleData, ctx: RunContext) -> nn.Module:
        profile = ctx.profile
        model = build_classifier(profile.arch, profile.stem, profile.width, profile.head, imagenet_weights(profile))
        model = model.to(data.target.images.device)
        train_supervised(model, data.target.images, data.target.labels, profile.source, ctx.generator, "oracle")
        return model

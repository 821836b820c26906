"""Source-only: the source model evaluated on the target as it is (the lower bound)."""

from __future__ import annotations

from typing import Any

from torch import nn

from benchmark.config.profiles import Profile
from methods.api import CostTerm, Method, RunContext, Setting


class SourceOnly(Method):
    """No adaptation: returns the source model unchanged."""

    name = "source_only"
    label = "Source only"
    setting = Setting.SOURCE
    hparams_spec = {}

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """Free: no adaptation."""
        return []

    def adapt(self, source_model: nn.Module, data: Any, ctx: RunContext) -> nn.Module:
        return source_model

"""The self-supervised objectives by name: ``deepclusterv2`` and ``swav``. A new objective is one module
with an ``SSLObjective`` subclass, added to ``OBJECTIVES`` here (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from benchmark.config.errors import UserError
from methods.ssl.base import SSLObjective
from methods.ssl.deepclusterv2 import DeepClusterV2
from methods.ssl.swav import SwAV

OBJECTIVES: dict[str, type[SSLObjective]] = {cls.name: cls for cls in (DeepClusterV2, SwAV)}


def ssl_names() -> tuple[str, ...]:
    """The names of the objectives, sorted (``deepclusterv2``, ``swav``)."""
    return tuple(sorted(OBJECTIVES))


def get_ssl(name: str) -> type[SSLObjective]:
    """The objective called ``name``; a UserError listing the known ones otherwise."""
    if name not in OBJECTIVES:
        raise UserError(f"unknown self-supervised method {name!r}; known: {', '.join(ssl_names())}")
    return OBJECTIVES[name]

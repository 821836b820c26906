"""The profile a command runs at: a named profile with the user's overrides (``--profile-file``, then ``--set``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.config.overrides import apply_overrides
from benchmark.config.profiles import Profile, get_profile
from benchmark.config.errors import UserError
from methods import registry
from methods.ssl.registry import recipe_field_types


def resolve_profile(name: str, overrides: Mapping[str, Any] | None = None) -> Profile:
    """The profile ``name`` with ``overrides`` (``{dotted path: value}``; ``benchmark.config.overrides``) applied;
    ``hparams.<method or *>.<name>`` paths must name a registered method (or ``*``) and a hyperparameter it
    declares (for ``*``: one some method declares)."""
    profile = get_profile(name)
    if not overrides:
        return profile
    for path in overrides:
        if path.startswith("hparams."):
            _check_hparam_path(path)
    return apply_overrides(profile, overrides, recipe_field_types())


def frozen_overrides(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Profile overrides as sorted pairs, lists (a JSON round trip of a tuple) as tuples: hashable, comparable."""
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items()))


def typed_overrides(overrides: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``overrides`` converted and checked as ``resolve_profile`` applies them, as sorted pairs (the form sweep
    jobs carry). The typed values depend on the fields' types only, so any named profile serves."""
    return frozen_overrides(resolve_profile("paper", overrides).overrides) if overrides else ()


def _check_hparam_path(path: str) -> None:
    parts = path.split(".")
    if len(parts) != 3:
        raise UserError(f"profile override {path!r}: expected hparams.<method or *>.<hyperparameter>")
    _, scope, name = parts
    classes = list(registry.available().values()) if scope == "*" else [registry.get(scope)]
    declared = sorted({hp for cls in classes for hp in cls.hparams_spec})
    if name not in declared:
        raise UserError(f"profile override {path!r}: {scope!r} declares no hyperparameter {name!r}; "
                        f"known: {', '.join(declared)}")

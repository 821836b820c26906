"""The profile a command runs at: a named profile with the user's overrides (``--profile-file``, then ``--set``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.overrides import apply_overrides
from benchmark.config.profiles import SOURCE_RECIPES, Profile, get_profile
from methods import registry
from methods.ssl.ssl_registry import recipe_field_types


def resolve_profile(name: str, overrides: Mapping[str, Any] | None = None, method: str | None = None) -> Profile:
    """The profile ``name`` at which ``method`` runs (``method_source``), with ``overrides`` (``{dotted path:
    value}``; ``benchmark.config.overrides``) applied after; ``hparams.<method or *>.<name>`` paths must name a
    registered method (or ``*``) and a hyperparameter it declares (for ``*``: one some method declares)."""
    profile = method_source(get_profile(name), method)
    if not overrides:
        return profile
    typed = {path: typed_hparam(path, value) if path.startswith("hparams.") else value
             for path, value in overrides.items()}
    return apply_overrides(profile, typed, recipe_field_types())


def method_source(profile: Profile, method: str | None) -> Profile:
    """``profile`` with ``method``'s own source recipe (``Method.source_recipe``) where the profile runs each
    method on its release's recipe (``Profile.source_per_method``); else (or for None: a probe, a source model
    alone) ``profile`` itself."""
    if method is None or not profile.source_per_method:
        return profile
    recipe = registry.get(method).source_recipe
    return profile if recipe is None else replace(profile, source=SOURCE_RECIPES[recipe])


def frozen_overrides(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Profile overrides as sorted pairs, lists (a JSON round trip of a tuple) as tuples: hashable, comparable."""
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items()))


def typed_overrides(overrides: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``overrides`` converted and checked as ``resolve_profile`` applies them, as sorted pairs (the form sweep
    jobs carry). The typed values depend on the fields' types only, so any named profile serves."""
    return frozen_overrides(resolve_profile("paper", overrides).overrides) if overrides else ()


def typed_hparam(path: str, value: Any) -> Any:
    """The value of a ``hparams.<method or *>.<name>`` override, converted and range-checked as each method it
    reaches (the one named, or for ``*`` every method declaring ``name``) would take it from ``--set``; a
    UserError naming the path for an unknown method or hyperparameter, or a value one of them refuses."""
    parts = path.split(".")
    if len(parts) != 3:
        raise UserError(f"profile override {path!r}: expected hparams.<method or *>.<hyperparameter>")
    _, scope, name = parts
    classes = list(registry.available().values()) if scope == "*" else [registry.get(scope)]
    declared = sorted({hp for cls in classes for hp in cls.hparams_spec})
    if name not in declared:
        raise UserError(f"profile override {path!r}: {scope!r} declares no hyperparameter {name!r}; "
                        f"known: {', '.join(declared)}")
    typed = [_checked(path, cls, name, value) for cls in classes if name in cls.hparams_spec]
    return typed[0]


def _checked(path: str, cls: type, name: str, value: Any) -> Any:
    """``value`` of hyperparameter ``name`` as method ``cls`` resolves it from the user (typed, in range)."""
    try:
        return registry.resolve_hparams(cls, {}, {name: value})[name]
    except UserError as error:
        raise UserError(f"profile override {path}={value!r}: {error}") from None

"""The self-supervised objectives by name: ``deepclusterv2`` and ``swav``. A new objective is one module
with an ``SSLObjective`` subclass (and, if it has fields of its own, its ``recipe_type``), added to
``OBJECTIVES`` here (docs/ARCHITECTURE.md). Also the resolution of a profile's SSL values into an objective's
recipe (``ssl_recipe``) and into the record that keys hash (``recipe_record``)."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Mapping
from dataclasses import asdict, fields
from functools import cache
from typing import TYPE_CHECKING, Any

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile, SSLRecipe, omit_key_stable_defaults

if TYPE_CHECKING:
    from methods.ssl.objective import SSLObjective

#: Each objective's name and ``module:class``. Imported on first use (``get_ssl``): the objectives' modules import
#: torch, and the store and the reports import this module for names alone.
OBJECTIVES: dict[str, str] = {
    "deepclusterv2": "methods.ssl.deepclusterv2:DeepClusterV2",
    "swav": "methods.ssl.swav:SwAV",
}


def ssl_names() -> tuple[str, ...]:
    """The names of the objectives, sorted (``deepclusterv2``, ``swav``)."""
    return tuple(sorted(OBJECTIVES))


def timed_ssl() -> str:
    """The objective whose step ``bench``'s ``ssl`` stage times (SwAV's; every objective's step is taken to cost
    the same: the backbone dominates)."""
    return "swav"


@cache
def get_ssl(name: str) -> type[SSLObjective]:
    """The objective called ``name``; a UserError listing the known ones otherwise."""
    if name not in OBJECTIVES:
        raise UserError(f"unknown self-supervised method {name!r}; known: {', '.join(ssl_names())}")
    module, _, cls = OBJECTIVES[name].partition(":")
    objective = getattr(importlib.import_module(module), cls)
    if objective.name != name:
        raise RuntimeError(f"{OBJECTIVES[name]} is named {objective.name!r}, registered as {name!r}")
    return objective


def recipe_field_types() -> dict[str, dict[str, Any]]:
    """``{objective: {field: type annotation}}``: every field of each objective's recipe type (shared and own),
    for ``benchmark.config.overrides.apply_overrides``."""
    return {name: typing.get_type_hints(get_ssl(name).recipe_type) for name in ssl_names()}


def ssl_recipe(profile: Profile, ssl: str) -> SSLRecipe:
    """The effective pretraining recipe of objective ``ssl`` at ``profile`` (an instance of its ``recipe_type``):
    the profile's shared ``ssl`` values, the objective's declared defaults, then ``profile.ssl_overrides[ssl]``."""
    return get_ssl(ssl).resolve_recipe(profile.ssl, profile.ssl_overrides.get(ssl, {}))


def recipe_record(ssl: str, shared: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The recipe record of objective ``ssl``: what its artifact key (``pretrain_key``) and the fingerprint of
    the jobs that use it (``benchmark.store.identity``) hash. Field set fixed for key stability.

    Its fields are the shared ones at ``ssl``'s effective values plus every registered objective's own fields,
    each at its own objective's effective values. Before objectives declared their own fields, one recipe held
    every objective's fields and keys hashed all of it; this record is that dict, value for value, so no key
    moved. The cost (conservative, never wrong): changing one objective's own field (say SwAV's Sinkhorn
    epsilon) re-keys every objective's artifacts and jobs, as changing it in the one shared recipe did.

    Args:
        ssl: a registered objective.
        shared: the profile's shared values (``Profile.as_record()["ssl"]``). In a profile record stored before
            objectives declared their own fields, this holds every objective's fields; an objective's own
            fields found here count as the profile's values for it.
        overrides: the profile's per-objective values (``Profile.as_record()["ssl_overrides"]``).
    """
    shared_names = {f.name for f in fields(SSLRecipe)}
    base = SSLRecipe(**{k: v for k, v in shared.items() if k in shared_names})
    legacy = {k: v for k, v in shared.items() if k not in shared_names}
    record: dict[str, Any] = {}
    for name in (*(n for n in ssl_names() if n != ssl), ssl):  # ``ssl`` last: its shared values win
        objective = get_ssl(name)
        own = objective.own_fields()
        values = {**{k: v for k, v in legacy.items() if k in own}, **overrides.get(name, {})}
        recipe = asdict(objective.resolve_recipe(base, values))
        record.update(recipe if name == ssl else {k: recipe[k] for k in own})
    return omit_key_stable_defaults(record)

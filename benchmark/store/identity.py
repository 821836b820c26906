"""The identity of a run or probe in the results storage: a hash of everything that determines its result.

A key covers the method, setup, profile name, seed, fully resolved hyperparameters, whether a t-SNE
embedding is stored, and a fingerprint of the profile *values* the job depends on (``recipe_fingerprint``):
the backbone, head and source-training recipe of the profile, plus the pretraining recipe of each
self-supervised objective the job uses. Changing, say, DeepClusterV2's recipe in a profile therefore gives
new keys to exactly the jobs that use a DeepClusterV2 backbone (CluP (DCv2), the DCv2 probe), and a sweep
runs those again while every other stored trial still counts. A search trial's key is its study, slot and
recipe (its hyperparameters are drawn when it runs); a search selects only among trials of its recipe.

Not covered (stated so that nobody relies on it): the dataset's bytes (a dataset is fixed by its name and
generator version), a solo-learn checkpoint's bytes (only its path is a hyperparameter), the CPU thread
count (results differ slightly with it; records carry ``threads``) and the code version. Conservative by
design: adding a field to a profile's dataclasses changes the fingerprints it enters, so those jobs run again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.hashing import json_digest
from benchmark.config.profiles import Profile
from methods import registry
from methods.ssl.ssl_registry import recipe_record, ssl_names

# Profile values that are not part of a job's recipe: its name is in the key already, the method
# hyperparameters it scales are in the resolved hyperparameters, the SSL recipes count only for the
# objectives a job uses, and the overrides' values are already in the fields they set.
_NOT_RECIPE = ("name", "hparams", "ssl", "ssl_overrides", "overrides")
#: The probe backbone that is the source model's (``benchmark.services.linear_probe.PROBE_BACKBONES``).
SOURCE_BACKBONE = "source"


def ssl_recipe_values(profile_values: Mapping[str, Any], ssl: str) -> dict[str, Any]:
    """The pretraining recipe record of objective ``ssl`` (``methods.ssl.ssl_registry.recipe_record``: the same
    dict its artifact key holds) from a profile's values (``Profile.as_record``, or a stored record's
    ``profile_values``, including those stored before objectives declared their own recipe fields)."""
    return recipe_record(ssl, profile_values["ssl"], profile_values.get("ssl_overrides", {}))


def recipe_fingerprint(profile_values: Mapping[str, Any], ssl_objectives: Iterable[str]) -> str:
    """A hash (16 hex digits) of the profile values a job depends on.

    Args:
        profile_values: ``Profile.as_record()`` (or a stored record's ``profile_values``).
        ssl_objectives: the self-supervised objectives whose backbones the job uses (may be empty).
    """
    values = {k: v for k, v in profile_values.items() if k not in _NOT_RECIPE}
    values["ssl"] = {name: ssl_recipe_values(profile_values, name) for name in sorted(set(ssl_objectives))}
    return json_digest(values)


def probe_backbone(method: str) -> str | None:
    """The backbone of a linear probe's method name (``probe:<backbone>``); None for a method's run."""
    kind, colon, backbone = method.partition(":")
    return backbone if colon and kind == "probe" else None


def ssl_objectives(method: str, hparams: Mapping[str, Any]) -> tuple[str, ...]:
    """The self-supervised objectives a run of ``method`` (or a probe, ``probe:<backbone>``) uses: the method's
    declaration (``Method.ssl_objectives``), or the probed backbone when it is a registered objective's."""
    backbone = probe_backbone(method)
    if backbone is not None:
        return (backbone,) if backbone in ssl_names() else ()
    return tuple(registry.get(method).ssl_objectives(dict(hparams)))


def needs_source_model(method: str) -> bool:
    """Whether a run of ``method`` needs its setup's source model (the method's declaration,
    ``Method.needs_source_model``), or a probe (``probe:<backbone>``) does: the probe of the source backbone."""
    backbone = probe_backbone(method)
    if backbone is not None:
        return backbone == SOURCE_BACKBONE
    return registry.get(method).needs_source_model


def job_recipe(method: str, profile: Profile, hparams: Mapping[str, Any]) -> str:
    """The recipe of a run or probe of ``method`` at ``profile`` (a named profile with any overrides): the
    fingerprint of the profile values it depends on and, for a method's run, the method's code ``version``
    (16 hex digits)."""
    fingerprint = recipe_fingerprint(profile.as_record(), ssl_objectives(method, hparams))
    return _with_version(method, fingerprint, None)


def _with_version(method: str, fingerprint: str, version: int | None) -> str:
    """A job's recipe from its profile fingerprint: a probe's is the fingerprint; a run's also holds the method's
    code ``version`` (None: the registered class's)."""
    if probe_backbone(method) is not None:
        return fingerprint
    version = registry.get(method).version if version is None else version
    return json_digest({"profile": fingerprint, "method_version": version})


def run_key(method: str, setup: str, profile: str, seed: int, hparams: Mapping[str, Any], embedding: bool,
            recipe: str) -> str:
    """The identity of a run or probe (16 hex digits)."""
    return json_digest([method, setup, profile, seed, dict(hparams), bool(embedding), recipe])


def search_key(study_name: str, slot: int, recipe: str) -> str:
    """The identity of trial ``slot`` of a search (its hyperparameters are drawn when it runs):
    ``<study>#<slot>@<recipe>``; the leaderboard selects among a study's trials with its current recipe."""
    return f"{study_name}#{slot}@{recipe}"


def search_key_recipe(key: str) -> str:
    """The recipe part of a ``search_key``."""
    return key.rpartition("@")[2]


def trial_key(attrs: Mapping[str, Any]) -> str | None:
    """The key of the job a stored trial answers, from its user attributes (None when they are not a run's,
    a probe's or a search trial's).

    A trial made by a sweep carries its ``job_key``; one made by ``run``/``probe`` carries its ``recipe``
    and the key is computed. A trial stored before keys covered recipes (no ``recipe``) answers no job
    (docs/PROTOCOL.md, "Job identity").
    """
    try:
        if "recipe" not in attrs:
            return None
        if "job_key" in attrs:
            return attrs["job_key"]
        return run_key(attrs["method"], attrs["setup"], attrs["profile"], attrs["seed"], attrs["hparams"],
                       attrs.get("embedding", False), attrs["recipe"])
    except (KeyError, UserError):
        return None

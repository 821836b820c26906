"""The profile a command runs at: a named profile with the user's overrides (``--profile-file``, then ``--set``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.config.overrides import apply_overrides
from benchmark.config.profiles import Profile, get_profile
from methods.ssl.registry import recipe_field_types


def resolve_profile(name: str, overrides: Mapping[str, Any] | None = None) -> Profile:
    """The profile ``name`` with ``overrides`` (``{dotted path: value}``; ``benchmark.config.overrides``) applied."""
    profile = get_profile(name)
    return apply_overrides(profile, overrides, recipe_field_types()) if overrides else profile

"""What a stored record says ran beyond its method, setup, profile name, seed and hyperparameters: the profile
overrides it applied and the code that ran it. Two runs that differ in it are different results: ``results
show`` keeps them apart and ``results import`` says when an imported trial replaces one that differs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The ``versions`` of a record that name the code (``benchmark.config.versions``); torch is the environment.
CODE_VERSIONS = ("package", "git")


def record_overrides(record: Mapping[str, Any]) -> str:
    """The profile overrides a record applied, as ``path=value, ...`` (sorted; empty when none)."""
    overrides = (record.get("profile_values") or {}).get("overrides") or {}
    return ", ".join(f"{path}={value}" for path, value in sorted(overrides.items()))


def record_code(record: Mapping[str, Any]) -> str:
    """The code that made a record, e.g. ``0.1.0 e2c6cb0`` (package version and git commit, those known)."""
    versions = record.get("versions") or {}
    return " ".join(str(versions[name]) for name in CODE_VERSIONS if versions.get(name))


def record_configuration(record: Mapping[str, Any]) -> str:
    """Overrides and code of a record in one label: ``source.epochs=1; code 0.1.0 e2c6cb0`` (``-`` parts omitted)."""
    parts = [record_overrides(record), f"code {record_code(record)}" if record_code(record) else ""]
    return "; ".join(part for part in parts if part) or "-"

"""The schema of one records line (``results import``): what a trial from someone else must hold to be stored.

A line is a JSON object with exactly the keys ``LINE_KEYS``; its ``user_attrs.record`` (a run or
probe record, when present) must name a known method, setting and setup, hold a seed and counts that are
non-negative integers and accuracies that are finite numbers within [0, 100]. Keys the schema does not name
inside ``user_attrs`` are allowed (newer records carry more, e.g. a ``machine`` fingerprint). The check is a
JSON Schema (Draft 2020-12, ``jsonschema``) with three additions: integers are ``int`` only (not ``1.0``),
``"finite": true`` refuses NaN and infinities, and ``method_name`` names the known methods. ``schema_error``
names the first bad field, e.g. ``user_attrs.record.accuracy: 140.0 is greater than the maximum of 100``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from benchmark.config.setups import SETUPS
from methods.declarations import Setting
from methods.registry import available

#: Every key of a line (no other is accepted).
LINE_KEYS = ("datetime_complete", "datetime_start", "directions", "distributions", "intermediate_values", "params",
             "state", "study", "user_attrs", "values")
#: The trial states a line may have (finished ones; ``Study.add_trial`` takes no other).
IMPORTABLE_STATES = ("COMPLETE", "PRUNED", "FAIL")
#: The settings a record may name (``methods.core.inputs``; ``oracle`` also for probes).
SETTINGS = tuple(setting.value for setting in (Setting.SOURCE, Setting.SFDA, Setting.UDA, Setting.ORACLE))
#: A probe record's method: ``probe:<backbone>``.
PROBE_METHOD = r"probe:[a-z][a-z0-9_]*"
#: The longest problem text kept (a schema message quotes the bad value, which may be large).
MESSAGE_CHARS = 160

_COUNT = {"type": "integer", "minimum": 0}
_PERCENT = {"type": "number", "finite": True, "minimum": 0, "maximum": 100}
_NAME = {"type": "string", "minLength": 1}
_FRACTION = {"type": "number", "finite": True, "minimum": 0, "maximum": 1}
_OBJECT = {"type": "object"}


def _finite(validator: Any, finite: bool, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The ``finite`` keyword: a float must not be NaN or infinite."""
    if finite and isinstance(instance, float) and not math.isfinite(instance):
        yield ValidationError(f"{instance!r} is not a finite number")


def _method_name(validator: Any, known: list[str], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The ``method_name`` keyword: a known method, or ``probe:<backbone>``."""
    if isinstance(instance, str) and instance not in known and not re.fullmatch(PROBE_METHOD, instance):
        yield ValidationError(f"unknown method {instance!r}; known: {', '.join(known)}, probe:<backbone>")


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(
    Draft202012Validator, validators={"finite": _finite, "method_name": _method_name},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


def record_schema(methods: tuple[str, ...], setups: tuple[str, ...]) -> dict[str, Any]:
    """The schema of a run or probe record (``user_attrs.record``) for these known method and setup names."""
    return {
        "type": "object",
        "required": ["method", "setting", "setup", "profile", "seed", "accuracy", "mean_class_accuracy", "hparams"],
        "properties": {
            "method": {"type": "string", "method_name": list(methods)},
            "setting": {"enum": list(SETTINGS)},
            "setup": {"enum": list(setups)},
            "profile": _NAME,
            "seed": _COUNT,
            "accuracy": _PERCENT,
            "mean_class_accuracy": _PERCENT,
            "source_test_accuracy": _PERCENT,
            "class_accuracy": {"type": "object", "additionalProperties": _PERCENT},
            "confusion": {"type": "array", "items": {"type": "array", "items": _COUNT}},
            "n_test": _COUNT,
            "n": _COUNT,
            "threads": _COUNT,
            "hparams": _OBJECT,
            "profile_values": _OBJECT,
            "versions": _OBJECT,
            "machine": _OBJECT,
            "source_parts": {"type": "object", "additionalProperties": {"enum": ["trained", "frozen", "replaced"]}},
            "pseudo_labels": {"anyOf": [{"type": "null"}, {
                "type": "object",
                "properties": {"kept": _COUNT, "kept_fraction": _FRACTION, "accuracy_vs_truth": _PERCENT}}]},
        },
    }


def line_schema(methods: tuple[str, ...], setups: tuple[str, ...]) -> dict[str, Any]:
    """The schema of a whole records line (see the module doc)."""
    job = {"type": "object", "properties": {
        "experiment": {"type": "string"}, "kind": _NAME, "method": _NAME, "setup": {"enum": list(setups)},
        "seed": _COUNT, "profile": _NAME, "overrides": _OBJECT, "profile_overrides": _OBJECT, "slot": _COUNT,
        "objective": _NAME, "searched": {"type": "array"}, "embedding": {"type": "boolean"}}}
    return {
        "type": "object",
        "required": list(LINE_KEYS),
        "additionalProperties": False,
        "properties": {
            "study": _NAME,
            "directions": {"type": "array", "minItems": 1, "items": {"enum": ["MAXIMIZE", "MINIMIZE"]}},
            "state": {"enum": list(IMPORTABLE_STATES)},
            "values": {"anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "number", "finite": True}}]},
            "params": _OBJECT,
            "distributions": {"type": "object", "additionalProperties": _OBJECT},
            "user_attrs": {"type": "object", "properties": {
                "record": record_schema(methods, setups), "job": job, "seed": _COUNT, "method": _NAME,
                "setup": {"enum": list(setups)}, "profile": _NAME, "job_key": _NAME, "recipe": _NAME}},
            "intermediate_values": {"type": "array", "items": {
                "type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}], "minItems": 2,
                "maxItems": 2}},
            "datetime_start": {"type": "string"},
            "datetime_complete": {"type": "string"},
        },
    }


@lru_cache(maxsize=4)
def _validator(methods: tuple[str, ...], setups: tuple[str, ...]) -> Any:
    schema = line_schema(methods, setups)
    _Validator.check_schema(schema)
    return _Validator(schema)


def schema_error(line: Any) -> str | None:
    """What is wrong with a parsed records line, as ``FIELD: problem`` (the most relevant error), or None."""
    error = best_match(_validator(tuple(sorted(available())), tuple(SETUPS)).iter_errors(line))
    if error is None:
        return None
    field = ".".join(str(part) for part in error.absolute_path) or "the line"
    message = error.message if len(error.message) <= MESSAGE_CHARS else error.message[:MESSAGE_CHARS] + "..."
    return f"{field}: {message}"

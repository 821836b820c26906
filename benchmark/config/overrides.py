"""Profile overrides: dotted paths into a named profile (``--set source.epochs=1``, ``--profile-file my.toml``).

A path names one field: ``image_size``, ``precision`` ... (the profile's own scalars), ``source`` (a named
source recipe, ``SOURCE_RECIPES``; applied before the recipe's fields), ``source.<field>``, ``ssl.<field>``
(the recipe every self-supervised objective shares), ``ssl.<objective>.<field>`` (one objective's
departures and own fields) and ``hparams.<method or *>.<name>`` (a method hyperparameter the profile scales,
e.g. ``hparams.clup.epochs=1`` for every CluP job of a sweep; checked and converted against the method's
declaration by ``benchmark.orchestration.profile_resolution``). Values are type-checked against the field they replace; an unknown path is an
error listing the known ones. The applied overrides are kept on the profile (``Profile.overrides``, in every
run record); the values they set are in every artifact and job key because the keys hold those fields.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import tomllib

from benchmark.config.errors import UserError
from benchmark.config.profiles import SOURCE_RECIPES, Profile, SourceRecipe, SSLRecipe

#: Profile fields that are not plain values a path can set (sections, or bookkeeping).
_NOT_SCALAR = ("name", "source", "ssl", "ssl_overrides", "hparams", "overrides")
#: Strings with a fixed set of values (the rest are checked where they are used: archs, stems, heads).
CHOICES: dict[str, tuple[str, ...]] = {
    "precision": ("fp32", "bf16", "auto"),
    "numerics": ("native", "portable"),
    "source.schedule": ("shot", "exponential"),
    "source.augmentation": ("mild", "strong"),
    "source.head": ("shot", "linear", "linear_wn", "dann", "cdan"),
    "ssl.optimizer": ("lars", "sgd"),
}


def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(path: str, value: Any, annotation: Any) -> Any:
    """``value`` (a string from ``--set``, or a TOML value) as ``annotation``; a UserError naming ``path``."""
    args = typing.get_args(annotation)
    if type(None) in args:  # ``X | None``
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        return _convert(path, value, next(a for a in args if a is not type(None)))
    origin = typing.get_origin(annotation)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or len(items) != len(args):
            raise UserError(f"profile override {path}: expected {len(args)} comma-separated values, got {value!r}")
        return tuple(_convert(path, item, arg) for item, arg in zip(items, args, strict=True))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise UserError(f"profile override {path}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise UserError(f"profile override {path}: expected an integer, got {value!r}")
    if annotation is float:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise UserError(f"profile override {path}: expected a finite number, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"profile override {path}: expected a name, got {value!r}")
        text = value.strip()
        if path in CHOICES and text not in CHOICES[path]:
            raise UserError(f"profile override {path}={text!r}: known values are {', '.join(CHOICES[path])}")
        return text
    raise UserError(f"profile override {path}: values of type {annotation} cannot be set")


#: Integer fields that must be at least 1 (by their last path component).
_POSITIVE = ("epochs", "batch_size", "eval_batch_size", "width", "image_size", "prototypes", "projector_hidden",
             "projector_out", "large_crops", "large_size", "small_size", "checkpoint_every")


def _check_positive(path: str, value: Any) -> None:
    if path.rpartition(".")[2] in _POSITIVE and isinstance(value, int) and value < 1:
        raise UserError(f"profile override {path}={value}: must be at least 1")


def known_paths(ssl_fields: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every path ``apply_overrides`` accepts (``ssl.<objective>.*`` written once per objective)."""
    scalars = [f.name for f in fields(Profile) if f.name not in _NOT_SCALAR]
    return [*scalars, "source", *(f"source.{f.name}" for f in fields(SourceRecipe) if f.name != "name"),
            *(f"ssl.{f.name}" for f in fields(SSLRecipe)), *(f"ssl.{name}.*" for name in sorted(ssl_fields)),
            "hparams.<method or *>.<name>"]


def _unknown(path: str, ssl_fields: Mapping[str, Mapping[str, Any]]) -> UserError:
    return UserError(f"unknown profile field {path!r}; known: {', '.join(known_paths(ssl_fields))}")


def _set_source(profile: Profile, path: str, value: Any, ssl_fields: Mapping[str, Mapping[str, Any]]) -> tuple[Profile, Any]:
    if path == "source":
        text = _convert(path, value, str)
        if text not in SOURCE_RECIPES:
            raise UserError(f"profile override source={text!r}: known recipes are {', '.join(SOURCE_RECIPES)}")
        return replace(profile, source=SOURCE_RECIPES[text]), text
    name = path.partition(".")[2]
    if name not in _types(SourceRecipe) or name == "name":
        raise _unknown(path, ssl_fields)
    typed = _convert(path, value, _types(SourceRecipe)[name])
    return replace(profile, source=replace(profile.source, **{name: typed})), typed


def _set_ssl(profile: Profile, path: str, value: Any, ssl_fields: Mapping[str, Mapping[str, Any]]) -> tuple[Profile, Any]:
    parts = path.split(".")
    if len(parts) == 2 and parts[1] in _types(SSLRecipe):
        typed = _convert(path, value, _types(SSLRecipe)[parts[1]])
        return replace(profile, ssl=replace(profile.ssl, **{parts[1]: typed})), typed
    if len(parts) == 3 and parts[1] in ssl_fields and parts[2] in ssl_fields[parts[1]]:
        typed = _convert(path, value, ssl_fields[parts[1]][parts[2]])
        own = {name: dict(values) for name, values in profile.ssl_overrides.items()}
        own.setdefault(parts[1], {})[parts[2]] = typed
        return replace(profile, ssl_overrides=own), typed
    raise _unknown(path, ssl_fields)


def apply_overrides(profile: Profile, overrides: Mapping[str, Any], ssl_fields: Mapping[str, Mapping[str, Any]]) -> Profile:
    """``profile`` with ``overrides`` applied (``source`` first, then the rest in path order).

    Args:
        profile: a named profile.
        overrides: ``{dotted path: value}``; values are strings (``--set``) or TOML values.
        ssl_fields: ``{objective: {field: type annotation}}`` of every self-supervised objective (all fields of
            its recipe type), for ``ssl.<objective>.<field>`` paths.

    Returns:
        The new profile; ``overrides`` holds the typed values applied (merged with any earlier ones).
    """
    applied: dict[str, Any] = dict(profile.overrides)
    for path in sorted(overrides, key=lambda p: (p != "source", p)):
        value = overrides[path]
        head = path.split(".")[0]
        if head == "source":
            profile, typed = _set_source(profile, path, value, ssl_fields)
        elif head == "ssl":
            profile, typed = _set_ssl(profile, path, value, ssl_fields)
        elif head == "hparams" and len(path.split(".")) == 3:
            _, scope, name = path.split(".")
            scaled = {key: dict(values) for key, values in profile.hparams.items()}
            scaled.setdefault(scope, {})[name] = typed = value
            profile = replace(profile, hparams=scaled)
        elif "." not in path and path in _types(Profile) and path not in _NOT_SCALAR:
            typed = _convert(path, value, _types(Profile)[path])
            profile = replace(profile, **{path: typed})
        else:
            raise _unknown(path, ssl_fields)
        _check_positive(path, typed)
        applied[path] = typed
    return replace(profile, overrides=dict(sorted(applied.items())))


def read_profile_file(path: str | Path) -> dict[str, Any]:
    """A TOML profile file as ``{dotted path: value}``: top-level keys are the profile's fields, tables its
    sections (``[source]``, ``[ssl]``, ``[ssl.swav]``); a UserError when it cannot be read or parsed."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise UserError(f"--profile-file {path}: cannot read it ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"--profile-file {path}: not valid TOML ({error})") from None
    except UnicodeDecodeError as error:
        raise UserError(f"--profile-file {path}: not a TOML text file (not UTF-8 at byte {error.start})") from None
    flat: dict[str, Any] = {}

    def walk(prefix: str, table: Mapping[str, Any]) -> None:
        for key, value in table.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(f"{path}.", value)
            else:
                flat[path] = value

    walk("", document)
    return flat

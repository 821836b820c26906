"""The method registry: built-ins register by decorator, third-party packages by entry point.

A third-party package declares, in its ``pyproject.toml``::

    [project.entry-points."fer_sfda_bench.methods"]
    my_method = "my_package.my_module:MyMethod"

and ``python -m benchmark run --method my_method`` finds it, with no edit to this repository.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from benchmark.errors import UserError
from benchmark.profiles import Profile
from methods.base import Method

ENTRY_POINT_GROUP = "fer_sfda_bench.methods"
_BUILTIN: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator registering a built-in method under ``cls.name``."""
    if cls.name in _BUILTIN:
        raise ValueError(f"method {cls.name!r} registered twice")
    _BUILTIN[cls.name] = cls
    return cls


def _load_builtins() -> None:
    from methods import aad, adversarial, clup, nrc, oracle, shot, source_only  # noqa: F401  (registration side effect)


@cache  # one scan per process: importlib.metadata's scan took about 4.6 ms a call, and job keys ask per job
def _load_entry_points() -> dict[str, type[Method]]:
    found: dict[str, type[Method]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise UserError(f"entry point {point.name!r} ({point.value}) is not a methods.base.Method subclass")
        found[cls.name] = cls
    return found


def available() -> dict[str, type[Method]]:
    """Every method by name: built-ins first, then entry-point plugins (a plugin may not shadow a built-in)."""
    _load_builtins()
    methods = dict(_BUILTIN)
    for name, cls in _load_entry_points().items():
        if name in methods and methods[name] is not cls:
            raise UserError(f"plugin method {name!r} ({cls.__module__}) clashes with a built-in method")
        methods[name] = cls
    return methods


def get(name: str) -> type[Method]:
    """The method class called ``name``; a UserError listing the known ones otherwise."""
    methods = available()
    if name not in methods:
        raise UserError(f"unknown method {name!r}; known: {', '.join(sorted(methods))}")
    return methods[name]


def resolve_hparams(
    cls: type[Method], setup_overrides: dict[str, dict[str, Any]], user: dict[str, Any], profile: Profile | None = None
) -> dict[str, Any]:
    """Defaults <- the profile's scaling <- the setup's values <- the user's ``--set`` values.

    Profile and setup overrides are ``{method name or "*": {name: value}}``; only names the method declares
    are taken from them. An undeclared user key is a UserError listing the valid ones.
    """
    spec = cls.hparams_spec
    values = {name: hp.default for name, hp in spec.items()}
    for overrides in (profile.hparams if profile else {}, setup_overrides):
        for scope in ("*", cls.name):
            values.update({k: v for k, v in overrides.get(scope, {}).items() if k in spec})
    unknown = sorted(set(user) - set(spec))
    if unknown:
        valid = ", ".join(sorted(spec)) or "none (this method has no hyperparameters)"
        raise UserError(f"unknown hyperparameter(s) {', '.join(unknown)} for method {cls.name!r}; valid: {valid}")
    for name, raw in user.items():
        values[name] = _coerce(name, raw, spec[name].default)
        choices = getattr(spec[name].distribution, "choices", None)
        if choices is not None and values[name] not in choices:
            raise UserError(f"{name}={raw!r} is not one of {', '.join(map(str, choices))} (method {cls.name!r})")
    return values


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise UserError(f"hyperparameter {name}={raw!r}: expected a {type(default).__name__}") from None
    return raw

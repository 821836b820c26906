"""The method registry: every method, built-in or third-party, is an entry point of one group.

This project's ``pyproject.toml`` declares the built-ins; a third-party package declares, in its own::

    [project.entry-points."fer_sfda_bench.methods"]
    my_method = "my_package.my_module:MyMethod"

and ``python -m benchmark run --method my_method`` finds it, with no edit to this repository.
"""

from __future__ import annotations

import math
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile
from methods.declarations import HParam

if TYPE_CHECKING:
    from methods.api import Method

ENTRY_POINT_GROUP = "fer_sfda_bench.methods"
#: The distribution whose entry points are the built-in methods.
DISTRIBUTION = "fer-sfda-bench"


def _load(point: EntryPoint) -> type[Method]:
    # Here, not at the top: this module is imported for keys and reports, and ``methods.api`` imports torch, which
    # loading a method's module (the line below) costs anyway.
    from methods.api import Method

    cls = point.load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise UserError(f"entry point {point.name!r} ({point.value}) is not a methods.api.Method subclass")
    if cls.name != point.name:
        raise UserError(f"entry point {point.name!r} ({point.value}) names a method called {cls.name!r}")
    return cls


def available() -> dict[str, type[Method]]:
    """Every method by name: built-ins first, then plugins (a plugin may not shadow a built-in)."""
    return dict(_scan())


@cache  # one scan per process: importlib.metadata's scan took about 4.6 ms a call, and job keys ask per job
def _scan() -> dict[str, type[Method]]:
    points = entry_points(group=ENTRY_POINT_GROUP)
    builtin = [p for p in points if p.dist is not None and p.dist.name == DISTRIBUTION]
    if not builtin:
        raise UserError(f"no built-in methods found: install the project (`pip install -e .`) so that its "
                        f"{ENTRY_POINT_GROUP!r} entry points exist")
    methods = {point.name: _load(point) for point in builtin}
    for point in points:
        if point in builtin:
            continue
        cls = _load(point)
        if cls.name in methods and methods[cls.name] is not cls:
            raise UserError(f"plugin method {cls.name!r} ({cls.__module__}) clashes with a built-in method")
        methods[cls.name] = cls
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
    """Defaults <- the profile's scaling <- the setup's values <- the user's profile overrides
    (``hparams.<method or *>.<name>`` in ``profile.overrides``: ``*`` first, then the method's own) <- the
    user's ``--set`` values.

    Profile and setup overrides are ``{method name or "*": {name: value}}``; only names the method declares
    are taken from them. A user's profile override wins over the profile's and the setup's own values, so
    ``hparams.*.epochs=1`` reaches every method declaring ``epochs`` (it is never only recorded). An
    undeclared user key is a UserError listing the valid ones. Every resolved value, wherever it came from, is
    then checked: a float must be finite and a value must lie in its declared ``HParam.valid`` range (a
    UserError naming the method, the hyperparameter, the value and the range).
    """
    spec = cls.hparams_spec
    values = {name: hp.default for name, hp in spec.items()}
    origin = dict.fromkeys(spec, "default")
    sources = (("profile", profile.hparams if profile else {}), ("setup", setup_overrides),
               ("profile override", _user_scaling(profile)))
    for where, overrides in sources:
        for scope in ("*", cls.name):
            taken = {k: _coerce(k, v, spec[k].default) for k, v in overrides.get(scope, {}).items() if k in spec}
            values.update(taken)
            origin.update(dict.fromkeys(taken, where))
    unknown = sorted(set(user) - set(spec))
    if unknown:
        valid = ", ".join(sorted(spec)) or "none (this method has no hyperparameters)"
        raise UserError(f"unknown hyperparameter(s) {', '.join(unknown)} for method {cls.name!r}; valid: {valid}")
    for name, raw in user.items():
        values[name] = _coerce(name, raw, spec[name].default)
        origin[name] = "user"
        choices = getattr(spec[name].distribution, "choices", None)
        if choices is not None and values[name] not in choices:
            raise UserError(f"{name}={raw!r} is not one of {', '.join(map(str, choices))} (method {cls.name!r})")
    for name, hp in spec.items():
        _check_range(cls.name, name, values[name], hp, origin[name])
    return values


def _user_scaling(profile: Profile | None) -> dict[str, dict[str, Any]]:
    """The ``hparams.<method or *>.<name>`` profile overrides the user gave, as ``{method or "*": {name: value}}``."""
    scaling: dict[str, dict[str, Any]] = {}
    for path, value in (profile.overrides if profile else {}).items():
        head, _, rest = path.partition(".")
        scope, _, name = rest.partition(".")
        if head == "hparams" and scope and name:
            scaling.setdefault(scope, {})[name] = value
    return scaling


def _check_range(method: str, name: str, value: Any, hp: HParam, origin: str) -> None:
    """A UserError unless ``value`` is finite (a float) and in ``hp.valid`` (when declared)."""
    valid = hp.valid.describe(name) if hp.valid is not None else None
    if isinstance(value, float) and not math.isfinite(value):
        problem = "is not a finite number"
    elif hp.valid is not None and value not in hp.valid:
        problem = "is out of range"
    else:
        return
    where = "" if origin == "user" else f" (the {origin} value)"
    raise UserError(f"method {method!r}: hyperparameter {name}={value!r}{where} {problem}; "
                    f"valid: {valid or 'any finite number'}")


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

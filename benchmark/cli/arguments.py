"""Options and helpers shared by the command modules: profile overrides (``--set``, ``--profile-file``,
``--numerics``), the common ``--seed/--device/--json``, comma-separated names and output (JSON, wrapped text)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES

STORAGE_HELP = "results storage URL (default sqlite:///$FERBENCH_HOME/results.db)"
#: The ``--profile`` choices, for help texts.
PROFILE_NAMES = " | ".join(PROFILES)

#: How ``--set`` names a profile field, for help texts and errors (no method or objective named here).
SET_EXAMPLES = "source.epochs=1, ssl.OBJECTIVE.epochs=200, profile.precision=fp32"


def parse_sets(pairs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``--set`` pairs as (method hyperparameters, profile overrides): a dotted key (``source.epochs``,
    ``ssl.OBJECTIVE.epochs``, ``profile.precision``) sets a profile field, a plain one (``q``) a hyperparameter."""
    method: dict[str, str] = {}
    profile: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        if "." in key:
            profile[key.removeprefix("profile.")] = value.strip()
        else:
            method[key] = value.strip()
    return method, profile


def profile_overrides(args: argparse.Namespace, *, method_sets: bool = False) -> tuple[dict[str, str], dict[str, Any]]:
    """(method hyperparameters, profile overrides) of a command: ``--profile-file`` first, then ``--set``; a
    command without hyperparameters (``method_sets`` False) refuses plain ``--set`` keys."""
    from benchmark.config.overrides import read_profile_file

    method, profile = parse_sets(args.set)
    if method and not method_sets:
        raise UserError(f"--set {next(iter(method))}=...: this command takes profile fields only (dotted keys, "
                        f"e.g. {SET_EXAMPLES})")
    from_file = read_profile_file(args.profile_file) if args.profile_file else {}
    profile = {**from_file, **profile}
    if getattr(args, "numerics", None) and (args.numerics != "native" or "numerics" in profile):
        profile["numerics"] = args.numerics  # --numerics wins; native by default adds nothing (native keys unchanged)
    return method, profile


def names(value: str, option: str) -> tuple[str, ...]:
    """A comma-separated option (``--setups a,b``, ``--experiment table1,fig4``...) as names, blanks dropped; a
    UserError when it names nothing (``--backbones ,``)."""
    found = tuple(name.strip() for name in value.split(",") if name.strip())
    if not found:
        raise UserError(f"{option} {value!r}: names nothing (expected comma-separated names)")
    return found


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


def say(text: str, indent: str = "  ") -> None:
    """Print ``text`` in lines of at most 80 columns, broken between clauses (``benchmark.reporting.report.wrap``);
    continuation lines start with ``indent``."""
    from benchmark.reporting.report import wrap

    print("\n".join(wrap(text, indent)))


def numerics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--numerics", choices=("native", "portable"), help="native (default: each library's fastest "
                   "kernels for this CPU) or portable (AVX2 caps, one thread: the same digits on any x86-64 CPU with "
                   "AVX2; a profile field, so a job of its own; docs/NUMERICS.md)")


def profile_options(p: argparse.ArgumentParser, *, method_sets: bool = False) -> None:
    """``--set``, ``--profile-file`` and ``--numerics``; ``method_sets``: ``--set`` also takes hyperparameters."""
    what = "a hyperparameter (q=50) or, dotted, a profile field" if method_sets else "a profile field (dotted)"
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override {what}: {SET_EXAMPLES} (repeatable)")
    p.add_argument("--profile-file", metavar="TOML", help="a TOML file of profile fields layered onto the profile "
                   "(top-level keys, [source], [ssl], [ssl.OBJECTIVE] ...); --set wins")
    numerics_option(p)


def common(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device`` and ``--json``."""
    p.add_argument("--seed", type=int, default=0, help="run seed; stage seeds are derived from it (default 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true", help="print the machine-readable record")

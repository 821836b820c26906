"""One rule for the integer options of every command: seeds, counts and retries have a smallest allowed value.

The CLI checks every parsed option named here before a command starts (``check_options``), and library entry
points that take a seed check it with ``check_seed``, so ``run``, ``source``, ``calibrate``, ``pretrain``,
``probe`` and ``sweep`` refuse the same values with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.config.errors import UserError

#: Option (its argparse destination) -> the smallest value allowed.
MINIMUMS: dict[str, int] = {"seed": 0, "split_seed": 0, "seeds": 1, "workers": 1, "max_retries": 0, "per_class": 1}


def check_minimum(name: str, value: int) -> int:
    """``value`` of option ``name`` (``MINIMUMS``), or a UserError ``--NAME VALUE: must be at least N``."""
    minimum = MINIMUMS[name]
    if value < minimum:
        raise UserError(f"--{name.replace('_', '-')} {value}: must be at least {minimum}")
    return value


def check_seed(seed: int) -> int:
    """A run seed, checked by the one rule (``--seed -1: must be at least 0``)."""
    return check_minimum("seed", seed)


def check_options(options: Mapping[str, Any]) -> None:
    """Check every integer option of ``options`` (e.g. ``vars(args)``) named in ``MINIMUMS``."""
    for name in MINIMUMS:
        value = options.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            check_minimum(name, value)

"""A method's declared search space (``methods.api.SearchSpace``) as the Optuna distribution the store uses.

Methods declare their spaces without Optuna, so that Optuna stays behind the store boundary (import-linter's
"Optuna lives in the store" contract).
"""

from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from methods.declarations import SearchChoice, SearchFloat, SearchInt, SearchSpace


def optuna_distribution(space: SearchSpace) -> BaseDistribution:
    """The Optuna distribution that draws exactly what ``space`` describes."""
    if isinstance(space, SearchFloat):
        return FloatDistribution(space.low, space.high, log=space.log, step=space.step)
    if isinstance(space, SearchInt):
        return IntDistribution(space.low, space.high, log=space.log, step=space.step)
    if isinstance(space, SearchChoice):
        return CategoricalDistribution(space.choices)
    raise TypeError(f"not a search space: {space!r}")

"""Random draws whose bits do not depend on the CPU, the C library or numpy's distribution code.

numpy's ``Generator`` turns its bit stream into uniform doubles by exact arithmetic (``random``, ``uniform``,
``integers``, ``permutation``), but its ``normal``, ``standard_normal``, ``beta`` and ``choice(p=...)`` call the
C library's ``exp``/``log``/``pow`` or sum in SIMD order, and NEP 19 lets their algorithms change between
numpy releases. The generator therefore draws only uniforms from numpy and shapes them here with the portable
transcendentals of ``portable``: Box-Muller normals, Marsaglia-Tsang gammas (hence betas), and categorical
draws against a cumulative sum taken in a fixed order.
"""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np

from datasets.synth import portable

__all__ = ["standard_normal", "normal", "beta", "categorical", "log_uniform"]

_TWO_PI = 2.0 * math.pi


def standard_normal(rng: np.random.Generator, shape: int | tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """Standard normal draws of ``shape`` by the Box-Muller transform of pairs of uniform doubles.

    Each pair (u1, u2) gives r cos(2 pi u2) and r sin(2 pi u2), r = sqrt(-2 log(1 - u1)) (1 - u1 in (0, 1]).
    """
    size = int(np.prod(shape, dtype=np.int64))
    pairs = (size + 1) // 2
    u = rng.random((pairs, 2))
    radius = np.sqrt(-2.0 * portable.log(1.0 - u[:, 0]))
    angle = _TWO_PI * u[:, 1]
    z = np.stack([radius * portable.cos(angle), radius * portable.sin(angle)], axis=1).reshape(-1)[:size]
    return z.reshape(shape).astype(dtype)


def normal(rng: np.random.Generator, loc: float, scale: float, shape: int | tuple[int, ...]) -> np.ndarray:
    """float64 normal draws ``loc + scale * z`` of ``shape``."""
    return loc + scale * standard_normal(rng, shape)


def _gamma(rng: np.random.Generator, shape: float, n: int) -> np.ndarray:
    """(n,) Gamma(``shape``, 1) draws (Marsaglia and Tsang, 2000; shape < 1 by the boost G(a + 1) U^(1/a))."""
    if shape <= 0:
        raise ValueError(f"gamma shape must be > 0, got {shape}")
    boost = shape < 1
    a = shape + 1.0 if boost else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = np.empty(n, dtype=np.float64)
    pending = np.arange(n)
    while pending.size:  # rejection rounds: each pending sample draws (x, u) afresh, in index order
        x = standard_normal(rng, pending.size)
        u = rng.random(pending.size)
        t = 1.0 + c * x
        v = t * t * t
        ok = v > 0
        safe_v = np.where(ok, v, 1.0)
        accept = ok & (portable.log(1.0 - u) < 0.5 * x * x + d - d * safe_v + d * portable.log(safe_v))
        out[pending[accept]] = d * safe_v[accept]
        pending = pending[~accept]
    if boost:
        out = out * portable.power(1.0 - rng.random(n), 1.0 / shape)
    return out


def beta(rng: np.random.Generator, a: float, b: float, n: int) -> np.ndarray:
    """(n,) float64 Beta(a, b) draws as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    x = _gamma(rng, a, n)
    y = _gamma(rng, b, n)
    return x / (x + y)


def categorical(rng: np.random.Generator, weights: tuple[float, ...] | np.ndarray, n: int) -> np.ndarray:
    """(n,) int64 indices drawn with probabilities proportional to ``weights`` (non-negative, not all 0).

    The cumulative distribution is summed left to right in Python floats, so it is the same on every CPU.
    """
    w = [float(value) for value in np.asarray(weights, dtype=np.float64).reshape(-1)]
    if any(value < 0 for value in w) or math.fsum(w) <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {w}")
    cdf = np.asarray(list(accumulate(w)), dtype=np.float64)
    index = np.searchsorted(cdf / cdf[-1], rng.random(n), side="right")
    return np.minimum(index, len(w) - 1).astype(np.int64)


def log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    """(n,) float64 draws whose logarithm is uniform in [log low, log high] (0 < low <= high)."""
    log_low, log_high = portable.log(np.float64(low)), portable.log(np.float64(high))
    return portable.exp(rng.uniform(float(log_low), float(log_high), n))

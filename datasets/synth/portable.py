"""Float arithmetic whose bits do not depend on the CPU: transcendentals, powers, sums and percentiles.

Why this module exists (no library fits): IEEE-754 ``+ - * /`` and ``sqrt`` are correctly rounded, so an
elementwise numpy operation on them gives the same bits on every CPU, whatever SIMD width numpy's dispatcher
picks. Library transcendentals are not: numpy's ``sin``/``cos``/``exp``/``log``/``power`` have AVX2 and AVX-512
kernels that round differently (numpy#23523), BLAS products pick per-CPU kernels (OpenBLAS#4510), and SIMD
reductions (``sum``, ``mean``) add in an order that depends on the vector width. The renderer therefore
computes every transcendental here, from exactly-rounded operations only (range reduction, then a polynomial
evaluated by Horner's rule in float64, one numpy operation per step so nothing can be fused), and every sum as a
fixed halving tree of elementwise additions. Exact operations besides the four and ``sqrt``: ``rint``,
``floor``, ``frexp``/``ldexp``, comparisons, ``where``, ``clip`` and sorting (whose output values are unique).

Accuracy: float64 inputs get a few float64 ulps; float32 inputs (the canvas) are reduced in float64 and their
polynomial is evaluated in float32, within about 2 float32 ulps. What matters is that the bits are a function
of the inputs alone. docs/DATA.md ("Portability") states the guarantee.
"""

from __future__ import annotations

from math import factorial

import numpy as np

__all__ = ["sin", "cos", "sin_of_sum", "exp", "log", "power", "square", "fixed_sum", "fixed_mean", "percentiles"]


# Cody-Waite splits (fdlibm): pi and ln 2 as a high part with trailing zero bits (so k * high is exact for the
# small k used here) plus a low part. Reductions run in float64 whatever the input's type.
_PI_HI = 3.14159265346825122833e00  # 2 * fdlibm's pio2_1: 33 significant bits
_PI_LO = 1.21542010130123844986e-10  # 2 * fdlibm's pio2_1t
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_PI = 0.318309886183790671538
_INV_LN2 = 1.44269504088896338700
_SQRT_HALF = 0.707106781186547524401
#: |x| above which the two-part reduction of sin/cos would lose bits (k * _PI_HI must stay exact).
_MAX_TRIG_ARG = 2.0**19
# Taylor coefficients, per precision of the polynomial: sin r = r * S(r^2) on |r| <= pi/2 (r^23 / 23! < 1e-20,
# r^13 / 13! < 6e-8 for float32); exp r = E(r) on |r| <= ln2 / 2 (r^15 / 15! < 1e-17, r^8 / 8! < 6e-9).
_SIN = {np.float64: tuple((-1) ** k / factorial(2 * k + 1) for k in range(12)),
        np.float32: tuple((-1) ** k / factorial(2 * k + 1) for k in range(7))}
_EXP = {np.float64: tuple(1 / factorial(k) for k in range(15)), np.float32: tuple(1 / factorial(k) for k in range(8))}
# log m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1) / (m + 1), |s| <= 0.1716 (float64 only).
_ATANH = tuple(1.0 / (2 * k + 1) for k in range(12))


def _float64(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _precision(x: np.ndarray | float) -> type:
    """float32 for float32 inputs (the renderer's images), else float64."""
    return np.float32 if np.asarray(x).dtype == np.float32 else np.float64


def _horner(t: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """sum_k coefficients[k] * t**k in ``t``'s dtype, from the highest power down, one operation at a time."""
    one = t.dtype.type
    acc = t * one(coefficients[-1])
    acc = acc + one(coefficients[-2])
    for c in reversed(coefficients[:-2]):
        acc = acc * t
        acc = acc + one(c)
    return acc


def _sin_reduced(x: np.ndarray, shift: float, precision: type) -> np.ndarray:
    """sin(x - shift * pi) for float64 ``x`` (shift 0 or 0.5), in ``precision``.

    x - shift pi = k pi + r with |r| <= pi/2, so the result is (-1)^k sin r.
    """
    if x.size and not np.all(np.abs(x) < _MAX_TRIG_ARG):
        raise ValueError(f"portable sin/cos take |x| < 2**19, got {float(np.max(np.abs(x)))}")
    whole = np.rint(x * _INV_PI - shift)
    k = whole + shift
    r = ((x - k * _PI_HI) - k * _PI_LO).astype(precision)
    result = r * _horner(r * r, _SIN[precision])
    odd = (whole.astype(np.int64) & 1).astype(bool)
    return np.where(odd, -result, result)


def sin(x: np.ndarray | float) -> np.ndarray:
    """Elementwise sine (radians), same dtype as ``x`` (float32 or float64)."""
    return _sin_reduced(_float64(x), 0.0, _precision(x))


def cos(x: np.ndarray | float) -> np.ndarray:
    """Elementwise cosine (radians), same dtype as ``x``: cos x = -sin(x - pi/2)."""
    return -_sin_reduced(_float64(x), 0.5, _precision(x))


def sin_of_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sin(a + b) = sin a cos b + cos a sin b, for ``a`` and ``b`` that broadcast against each other.

    Cheap where ``a`` is a small pixel grid and ``b`` a per-sample offset: four small transcendentals instead of
    one over the whole broadcast array.
    """
    return sin(a) * cos(b) + cos(a) * sin(b)


def exp(x: np.ndarray | float) -> np.ndarray:
    """Elementwise e**x, same dtype as ``x`` (0 below e**-745, inf above e**709)."""
    precision = _precision(x)
    x64 = np.clip(_float64(x), -800.0, 710.0)
    k = np.rint(x64 * _INV_LN2)
    r = ((x64 - k * _LN2_HI) - k * _LN2_LO).astype(precision)
    return np.ldexp(_horner(r, _EXP[precision]), k.astype(np.int32))


def log(x: np.ndarray | float) -> np.ndarray:
    """Elementwise natural logarithm of ``x > 0`` (-inf at 0), same dtype as ``x``."""
    x64 = _float64(x)
    if np.any(x64 < 0):
        raise ValueError("portable log takes x >= 0")
    m, e = np.frexp(np.where(x64 > 0, x64, 1.0))  # m in [0.5, 1): exact
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)  # m in [sqrt(1/2), sqrt(2))
    e = (e - low).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    log_m = 2.0 * s * _horner(s * s, _ATANH)
    result = e * _LN2_HI + (e * _LN2_LO + log_m)
    return np.where(x64 > 0, result, -np.inf).astype(_precision(x))


def power(base: np.ndarray | float, exponent: np.ndarray | float) -> np.ndarray:
    """Elementwise ``base ** exponent`` for ``base >= 0`` and ``exponent > 0`` (0 ** e = 0), dtype of ``base``."""
    b = _float64(base)
    e = _float64(exponent)
    if np.any(e <= 0):
        raise ValueError("portable power takes exponents > 0")
    positive = b > 0
    result = np.where(positive, exp(e * log(np.where(positive, b, 1.0))), 0.0)
    return result.astype(_precision(base))


def square(x: np.ndarray) -> np.ndarray:
    """``x * x`` (one exactly-rounded multiplication; ``x ** 2`` leaves the choice of kernel to numpy)."""
    return x * x


def fixed_sum(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """Sum along ``axis`` by a halving tree of elementwise additions: the same order on every CPU.

    Each level adds the second half of the axis onto the first (an odd element is carried), so the result is a
    function of the values alone, unlike ``np.sum``, whose blocking depends on SIMD width and memory layout.
    """
    x = np.moveaxis(np.asarray(x), axis, -1)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        head = x[..., :half] + x[..., half : 2 * half]
        x = np.concatenate([head, x[..., 2 * half :]], axis=-1) if x.shape[-1] % 2 else head
    out = x[..., 0] if x.shape[-1] else np.zeros(x.shape[:-1], dtype=x.dtype)
    return np.expand_dims(out, axis) if keepdims else out


def fixed_mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
    """Mean over ``axes`` (flattened together, in C order) with ``fixed_sum``; same dtype as ``x``."""
    x = np.asarray(x)
    axes = tuple(a % x.ndim for a in axes)
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    moved = np.transpose(x, rest + axes)
    flat = moved.reshape(*moved.shape[: len(rest)], -1)
    mean = fixed_sum(flat, -1) / x.dtype.type(flat.shape[-1])
    if keepdims:
        mean = mean.reshape([1 if a in axes else x.shape[a] for a in range(x.ndim)])
    return mean


def percentiles(x: np.ndarray, q: tuple[float, ...]) -> list[np.ndarray]:
    """Per-row percentiles of (n, m) ``x`` by numpy's default ``linear`` rule, from a sort (exact values).

    ``x + 0`` first turns -0.0 into +0.0, so the sort's tie order between the two zeros cannot matter.
    Returns one (n,) array per entry of ``q`` (percent, in [0, 100]), in ``x``'s dtype.
    """
    ordered = np.sort(x + x.dtype.type(0.0), axis=1).astype(np.float64)
    m = ordered.shape[1]
    out = []
    for percent in q:
        position = percent / 100.0 * (m - 1)
        lo = int(np.floor(position))
        hi = min(lo + 1, m - 1)
        fraction = position - lo
        value = ordered[:, lo] + (ordered[:, hi] - ordered[:, lo]) * fraction
        out.append(value.astype(x.dtype))
    return out

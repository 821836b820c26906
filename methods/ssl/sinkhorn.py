"""Sinkhorn-Knopp equipartition for SwAV's soft codes (single process, no torch.distributed).

Follows solo-learn / FAIR SwAV: the codes are computed in fp32 without gradient, after subtracting the global
maximum of the scores so that ``exp`` cannot overflow (eps = 0.05 turns a score range of 2, the range of dot
products between unit vectors, into exponents down to -40, well inside fp32).
"""

from __future__ import annotations

import torch

from methods.core.precision import full_precision

# Smallest positive normal fp32: a sum that underflowed to 0 is divided by this instead (its entries are all
# 0 or denormal, so the quotient stays <= 1 and finite).
_TINY = torch.finfo(torch.float32).tiny


def _normalise(q: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Scale ``q`` so that every slice summed over ``dim`` equals ``1 / size`` (zero slices stay zero)."""
    return q / q.sum(dim=dim, keepdim=True).clamp_min(_TINY) / size


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft assignments of B samples to P prototypes with (approximately) equal prototype usage.

    Args:
        scores: (B, P) finite prototype scores (dot products of unit-norm z and prototypes), any float dtype,
            e.g. bf16 under autocast. Computed in fp32 regardless (autocast is disabled inside).
        epsilon: entropic regularisation (temperature of the exponent); SwAV uses 0.05.
        iterations: rounds of (prototype, sample) normalisation; SwAV uses 3.

    Returns:
        (B, P) float32 codes q, no grad. Each row (sample) sums to 1 exactly (the last normalisation is over
        samples); each column (prototype) sums to about B / P, the closer the more iterations.
    """
    n_samples, n_protos = scores.shape
    with full_precision(scores):  # autocast off: every op below stays fp32
        s = scores.detach().float()
        q = torch.exp((s - s.max()) / epsilon).T  # (P, B); the maximum entry is exp(0) = 1
        q = q / q.sum()
        for _ in range(iterations):
            q = _normalise(q, dim=1, size=n_protos)  # each prototype gets total mass 1 / P
            q = _normalise(q, dim=0, size=n_samples)  # each sample gets total mass 1 / B
        return (q * n_samples).T

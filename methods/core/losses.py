"""Losses shared by several methods (entropy, diversity, information maximisation, mixup CE).

All take logits or probabilities of shape (B, C) and return a scalar tensor; ``EPS`` is SHOT's epsilon.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-5


def mean_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the prediction entropy, ``mean_i sum_c -p_ic log(p_ic + EPS)`` (nats)."""
    return -(probabilities * torch.log(probabilities + EPS)).sum(dim=1).mean()


def marginal_entropy(probabilities: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Entropy of the mean prediction, ``H(mean_i p_i)`` (nats); high when predictions are diverse. ``eps``
    inside the log: SHOT's ``EPS`` unless a method's authors used another (AdaContrast: 1e-8)."""
    mean = probabilities.mean(dim=0)
    return -(mean * torch.log(mean + eps)).sum()


def information_maximisation(probabilities: torch.Tensor) -> torch.Tensor:
    """SHOT's IM loss to minimise: individual entropy minus the entropy of the mean prediction."""
    return mean_entropy(probabilities) - marginal_entropy(probabilities)


def mixup_cross_entropy(
    logits: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor, lam: float
) -> torch.Tensor:
    """``lam * CE(logits, labels_a) + (1 - lam) * CE(logits, labels_b)`` (mixup's loss)."""
    return lam * F.cross_entropy(logits, labels_a) + (1.0 - lam) * F.cross_entropy(logits, labels_b)

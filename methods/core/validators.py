"""Unsupervised validators: label-free model-selection scores on the target train split.

Each is a pure function of the model's outputs on unlabelled target images (no labels exist in their
inputs), returns a float where **higher is better**, and is recorded for every run. They are used only by
selection rules (sweeps), never by default, and (``im``, on a fixed subset) for the training curves a method
reports each epoch (``methods.core.training.epoch_reporter``). They live in the engine so that methods can use
them; ``methods.core.validators`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from methods.core.inference import Outputs
from methods.core.losses import information_maximisation, mean_entropy


def entropy_score(outputs: Outputs) -> float:
    """Negative mean prediction entropy (nats): confident predictions score high."""
    return float(-mean_entropy(outputs.probabilities))


def im_score(outputs: Outputs) -> float:
    """Information maximisation: entropy of the mean prediction minus mean entropy (nats)."""
    return float(-information_maximisation(outputs.probabilities))


def snd_score(outputs: Outputs, temperature: float = 0.05, chunk: int = 2048) -> float:
    """Soft Neighbourhood Density (Saito et al., ICCV 2021).

    Rows of the L2-normalised softmax outputs (N, C); for each sample, the softmax over its cosine
    similarities to all other samples (self excluded) at ``temperature``; the score is the mean entropy
    of those distributions (nats). Computed in row chunks, so memory is O(chunk * N).
    """
    z = F.normalize(outputs.probabilities.float(), dim=1)
    n = z.shape[0]
    total = torch.zeros((), dtype=torch.float64, device=z.device)
    for start in range(0, n, chunk):
        sims = z[start : start + chunk] @ z.T / temperature
        rows = torch.arange(start, min(start + chunk, n), device=z.device)
        sims[rows - start, rows] = float("-inf")  # exclude self-similarity
        log_p = sims.log_softmax(dim=1)
        total += -(log_p.exp() * log_p.nan_to_num(neginf=0.0)).sum().double()
    return float(total / n)


VALIDATORS: dict[str, Callable[[Outputs], float]] = {
    "entropy": entropy_score,
    "im": im_score,
    "snd": snd_score,
}


def compute_validators(outputs: Outputs) -> dict[str, float]:
    """Every validator's score on one set of outputs."""
    return {name: fn(outputs) for name, fn in VALIDATORS.items()}


def fixed_subset(n: int, size: int) -> torch.Tensor:
    """``min(n, size)`` indices spread evenly over ``range(n)`` (every ``n / size``-th sample), drawing no random
    number: the same samples at every epoch, covering the whole split however it is ordered."""
    if n <= size:
        return torch.arange(n)
    return torch.div(torch.arange(size) * n, size, rounding_mode="floor")

"""AaD, attracting and dispersing (Yang et al., NeurIPS 2022), per docs/METHODS.md.

Each prediction is attracted to the bank scores of its K nearest neighbours and dispersed from the other
predictions of its batch, the dispersion weight decaying as ``alpha * (1 + 10 t / T) ** -beta``. Training
loop, optimiser and bank: ``methods.bank_methods``.
"""

from __future__ import annotations

import torch

from methods.api import HParam, Range, SearchFloat
from methods.bank_methods import NeighbourConsistencyMethod, neighbour_attraction
from methods.core.neighbours import NeighbourBank


def dispersion_weight(step: int, total_steps: int, alpha: float, beta: float) -> float:
    """``alpha * (1 + 10 * step / total_steps) ** -beta``: ``alpha`` at step 0, ``alpha * 11 ** -beta`` at the end."""
    return alpha * (1.0 + 10.0 * step / max(total_steps, 1)) ** (-beta)


def batch_dispersion(probabilities: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_{j != i} p_i . p_j`` over the (B, C) batch softmax; gradients flow through both p_i and p_j.

    Computed as ``(|sum_i p_i|^2 - sum_i |p_i|^2) / B``, equal to the authors' masked ``P @ P.T``.
    """
    total = probabilities.sum(dim=0)
    return ((total * total).sum() - (probabilities * probabilities).sum()) / len(probabilities)


def aad_loss(probabilities: torch.Tensor, neighbour_scores: torch.Tensor, dispersion: float) -> torch.Tensor:
    """``mean_i sum_k (-p_i . s_k) + dispersion * mean_i sum_{j != i} p_i . p_j``.

    Args:
        probabilities: (B, C) softmax of the batch.
        neighbour_scores: (B, K, C) bank scores of the K nearest neighbours.
        dispersion: this step's weight of the dispersion term (``dispersion_weight``).

    Returns:
        Scalar tensor.
    """
    return neighbour_attraction(probabilities, neighbour_scores) + dispersion * batch_dispersion(probabilities)


class AaD(NeighbourConsistencyMethod):
    """AaD: attract to K nearest bank neighbours, disperse from the rest of the batch; C trained too."""

    name = "aad"
    label = "AaD"
    hparams_spec = {
        **NeighbourConsistencyMethod.hparams_spec,
        "alpha": HParam(
            1.0, SearchFloat(0.1, 10.0, log=True), "initial weight of the dispersion term", Range.at_least(0)
        ),
        "beta": HParam(5.0, SearchFloat(0.0, 10.0), "decay exponent of the dispersion weight", Range.at_least(0)),
    }

    def neighbour_loss(
        self, probabilities: torch.Tensor, indices: torch.Tensor, bank: NeighbourBank, step: int, total_steps: int
    ) -> torch.Tensor:
        neighbours = bank.nearest(indices, self.hparams["k"])
        weight = dispersion_weight(step, total_steps, self.hparams["alpha"], self.hparams["beta"])
        return aad_loss(probabilities, bank.scores[neighbours], weight)

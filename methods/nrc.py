"""NRC, neighbourhood reciprocity clustering (Yang et al., NeurIPS 2021), per docs/METHODS.md.

Each sample is pulled towards the bank scores of its K nearest neighbours, weighted by affinity (1 for a
reciprocal neighbour, one that has the sample among its own KK nearest, else 0.1), and towards those of its
expanded neighbours (the KK nearest of each neighbour, weight 0.1); a diversity term keeps the mean
prediction spread over the classes. Training loop, optimiser and bank: ``methods.bank_methods``.
"""

from __future__ import annotations

import torch

from methods.api import HParam, Range, SearchInt
from methods.bank_methods import NeighbourConsistencyMethod, neighbour_attraction
from methods.core.losses import marginal_entropy
from methods.core.neighbours import NeighbourBank, reciprocal_affinity

#: Weight of every expanded neighbour (the authors' constant).
EXPANDED_WEIGHT = 0.1
#: Rows the bank's cached neighbour lists keep beyond max(k, kk), so that a list survives some of its members
#: being overwritten and moving away before it has to be searched again (a speed setting; results are exact).
LIST_SLACK = 8


def nrc_neighbourhood(
    bank: NeighbourBank, indices: torch.Tensor, k: int, kk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The retrieval of one NRC step, on a bank whose rows ``indices`` (B,) hold the batch's current outputs.

    Returns:
        (B, k) nearest rows of each sample, (B, k, kk) nearest rows of each of those (expanded neighbours)
        and (B, k) float32 affinities.
    """
    neighbours = bank.nearest(indices, k)
    expanded = bank.expanded(neighbours, kk)
    return neighbours, expanded, reciprocal_affinity(indices, expanded)


def nrc_loss(
    probabilities: torch.Tensor,
    neighbour_scores: torch.Tensor,
    affinity: torch.Tensor,
    expanded_scores: torch.Tensor,
    expanded_weight: float = EXPANDED_WEIGHT,
) -> torch.Tensor:
    """NRC's loss as the authors' code computes it (negative dot products, not ``-log`` of them).

    ``mean_i [sum_j expanded_weight * (-p_i . s_j) + sum_k a_ik * (-p_i . s_k)] + sum_c pbar_c log(pbar_c + 1e-5)``
    with ``pbar`` the batch's mean prediction.

    Args:
        probabilities: (B, C) softmax of the batch.
        neighbour_scores: (B, K, C) bank scores of the K nearest neighbours.
        affinity: (B, K) affinity of each neighbour (``methods.core.neighbours.reciprocal_affinity``).
        expanded_scores: (B, K, KK, C) bank scores of each neighbour's KK nearest neighbours.
        expanded_weight: weight of every expanded neighbour.

    Returns:
        Scalar tensor.
    """
    expanded = neighbour_attraction(probabilities, expanded_scores.flatten(1, 2), expanded_weight)
    nearest = neighbour_attraction(probabilities, neighbour_scores, affinity)
    return expanded + nearest - marginal_entropy(probabilities)


class NRC(NeighbourConsistencyMethod):
    """NRC: reciprocal-affinity-weighted neighbours + expanded neighbours + diversity; C trained too."""

    name = "nrc"
    label = "NRC"
    hparams_spec = {
        **NeighbourConsistencyMethod.hparams_spec,
        "kk": HParam(
            5, SearchInt(2, 10), "nearest neighbours of each neighbour (expanded neighbours)", Range.at_least(1)
        ),
    }

    def bank_list_length(self) -> int:
        """Cached list length: the neighbours of 5 x 64 rows are looked up per step (see ``NeighbourLists``)."""
        return LIST_SLACK + max(self.hparams["k"], self.hparams["kk"])

    def neighbour_loss(
        self, probabilities: torch.Tensor, indices: torch.Tensor, bank: NeighbourBank, step: int, total_steps: int
    ) -> torch.Tensor:
        neighbours, expanded, affinity = nrc_neighbourhood(bank, indices, self.hparams["k"], self.hparams["kk"])
        return nrc_loss(probabilities, bank.scores[neighbours], affinity, bank.scores[expanded])

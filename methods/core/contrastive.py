"""Pieces of momentum-contrast adaptation (AdaContrast, Chen et al., CVPR 2022), as plain functions on tensors.

- ``RingBuffer``: a fixed-size FIFO of aligned rows (MoCo's key queue with its pseudo-labels; AdaContrast's
  memory bank of momentum features and probabilities).
- ``ema_update``: the momentum (key) encoder's exponential moving average of the trained encoder.
- ``soft_knn_refine``: pseudo-labels refined by soft k-NN voting over a bank (cosine similarity).
- ``class_aware_info_nce``, ``diversity_loss``: two of AdaContrast's three losses (the third is a plain
  cross-entropy on the refined pseudo-labels).

Similarities, logits and softmax statistics run in float32 with autocast disabled (``full_precision``): bf16
would reorder near-tied neighbours and round the temperature-scaled logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.core.losses import marginal_entropy
from methods.core.precision import full_precision

__all__ = ["DIVERSITY_EPS", "RingBuffer", "class_aware_info_nce", "diversity_loss", "ema_update", "soft_knn_refine"]

#: Epsilon inside the log of AdaContrast's diversity term (their ``div``).
DIVERSITY_EPS = 1e-8


class RingBuffer:
    """Aligned tensors of ``size`` rows each, overwritten first in, first out (a MoCo queue).

    ``push`` writes its rows at ``pointer`` onwards, wrapping round, and advances ``pointer``; a push of more
    rows than ``size`` keeps only the last ``size`` of them (where a plain wrap-around write would hit one slot
    twice).

    Attributes:
        tensors: the stored tensors, each (size, ...), on one device.
        pointer: the slot the next push starts at.
    """

    def __init__(self, *tensors: torch.Tensor) -> None:
        if not tensors or len({len(t) for t in tensors}) != 1 or len(tensors[0]) == 0:
            raise ValueError("a RingBuffer needs one or more non-empty tensors with the same number of rows")
        self.tensors = list(tensors)
        self.pointer = 0

    def __len__(self) -> int:
        return len(self.tensors[0])

    @torch.no_grad()
    def push(self, *rows: torch.Tensor) -> None:
        """Write (B, ...) ``rows``, one per stored tensor, at the next B slots (detached, cast to the stored dtype)."""
        if len(rows) != len(self.tensors) or len({len(r) for r in rows}) != 1:
            raise ValueError(f"push needs {len(self.tensors)} row tensors with the same number of rows")
        count, size = len(rows[0]), len(self)
        start = self.pointer + max(count - size, 0)
        rows = tuple(r[-size:] for r in rows)
        slots = (start + torch.arange(len(rows[0]), device=self.tensors[0].device)) % size
        for stored, new in zip(self.tensors, rows):
            stored[slots] = new.detach().to(stored.dtype)
        self.pointer = (self.pointer + count) % size


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, momentum: float) -> None:
    """``theta_target <- momentum * theta_target + (1 - momentum) * theta_source`` for every parameter (MoCo's
    key-encoder update; buffers such as BatchNorm statistics are left alone, as in the authors' code).

    ``target`` must have ``source``'s parameters in the same order with the same shapes (a deep copy of it).
    """
    targets, sources = list(target.parameters()), list(source.parameters())
    if len(targets) != len(sources) or any(t.shape != s.shape for t, s in zip(targets, sources)):
        raise ValueError("ema_update: the two modules' parameters differ (the target must be a copy of the source)")
    torch._foreach_mul_(targets, momentum)
    torch._foreach_add_(targets, [s.detach() for s in sources], alpha=1.0 - momentum)


@torch.no_grad()
def soft_knn_refine(
    features: torch.Tensor, bank_features: torch.Tensor, bank_probabilities: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaContrast's pseudo-label refinement (their ``soft_k_nearest_neighbors``): the mean of the bank
    probabilities of each sample's ``k`` nearest bank rows by cosine similarity, and its argmax.

    No row is excluded: as in the authors' code, a sample's own (older) entry may be among its neighbours.

    Args:
        features: (B, E) features of the samples (any norm; normalised here).
        bank_features: (M, E) features of the bank (any norm), ``k <= M``.
        bank_probabilities: (M, C) probability rows of the bank.
        k: neighbours per sample.

    Returns:
        (B,) int64 refined pseudo-labels and (B, C) float32 voted probabilities.
    """
    with full_precision(features):
        queries = F.normalize(features.float(), dim=1)
        similarity = queries @ F.normalize(bank_features.float(), dim=1).T
        neighbours = similarity.topk(k, dim=1).indices
        probabilities = bank_probabilities.float()[neighbours].mean(dim=1)
    return probabilities.argmax(dim=1), probabilities


def class_aware_info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    queue: torch.Tensor,
    queue_labels: torch.Tensor,
    pseudo_labels: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """InfoNCE of each query against its own key (positive) and the queue (negatives), leaving out the queue
    entries whose pseudo-label equals the query's (AdaContrast's ``class_aware`` contrast).

    ``mean_i -log(exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_{j: y_j != yhat_i} exp(q_i.u_j / T)))``

    Gradients flow through ``queries`` only (keys and queue are constants).

    Args:
        queries: (B, E) L2-normalised features of the trained encoder (strong view).
        keys: (B, E) L2-normalised features of the momentum encoder (another strong view of the same images).
        queue: (K, E) L2-normalised earlier keys.
        queue_labels: (K,) int64 pseudo-labels of the queue entries.
        pseudo_labels: (B,) int64 pseudo-labels of the queries.
        temperature: T > 0.

    Returns:
        Scalar float32 tensor.
    """
    with full_precision(queries):
        q = queries.float()
        positive = (q * keys.detach().float()).sum(dim=1, keepdim=True)
        negative = q @ queue.detach().float().T
        negative = negative.masked_fill(pseudo_labels[:, None] == queue_labels[None, :], float("-inf"))
        logits = torch.cat([positive, negative], dim=1) / temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def diversity_loss(probabilities: torch.Tensor, eps: float = DIVERSITY_EPS) -> torch.Tensor:
    """``-H(mean_i p_i)`` over the (B, C) softmax of a batch: minimising it spreads the predictions over the
    classes (AdaContrast's ``div``, epsilon 1e-8 in the log). Scalar tensor."""
    return -marginal_entropy(probabilities, eps)

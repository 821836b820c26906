"""SwAV (Caron et al., 2020): swapped prediction of Sinkhorn-Knopp cluster codes between views.

Choices (docs/SSL.md): prototypes are a bias-free Linear(out, P) whose rows are re-normalised to unit
norm under no_grad before every step (the FAIR reference's way; solo-learn's frozen-g weight-norm is the
same function); Sinkhorn-Knopp runs in fp32 on each large crop's scores (plus the queue's, once active);
prototypes get no gradient for the first ``freeze_prototypes_epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.profiles import SSLRecipe
from methods.core.precision import full_precision
from methods.ssl.objective import SSLObjective
from methods.ssl.sinkhorn import sinkhorn_knopp


@dataclass(frozen=True)
class SwAVRecipe(SSLRecipe):
    """SwAV's recipe: the shared fields and SwAV's own.

    Attributes:
        freeze_prototypes_epochs: the prototypes get no gradient for this many epochs.
        queue_length: queue per large crop (0 = no queue), active from ``queue_start_epoch``.
        queue_start_epoch: first epoch that uses the queue.
        sinkhorn_epsilon, sinkhorn_iterations: Sinkhorn-Knopp settings.
    """

    freeze_prototypes_epochs: int = 2
    queue_length: int = 3840
    queue_start_epoch: int = 15
    sinkhorn_epsilon: float = 0.05
    sinkhorn_iterations: int = 3


class SwAV(SSLObjective):
    """SwAV's projector, prototypes, optional queue and swapped-prediction loss."""

    name = "swav"
    recipe_type = SwAVRecipe
    recipe: SwAVRecipe

    def __init__(self, feature_dim: int, recipe: SwAVRecipe, n_samples: int) -> None:
        super().__init__(feature_dim, recipe, n_samples)
        self.prototypes = nn.Linear(recipe.projector_out, recipe.prototypes, bias=False)
        self.before_step()
        # Queue of past large-crop embeddings, (large crops, L, out); ``_queued`` counts valid rows.
        self.register_buffer("queue", torch.zeros(recipe.large_crops, recipe.queue_length, recipe.projector_out))
        self.register_buffer("queued", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def before_step(self) -> None:
        weight = self.prototypes.weight
        weight.copy_(F.normalize(weight, dim=1))

    def after_backward(self, epoch: int) -> None:
        if epoch < self.recipe.freeze_prototypes_epochs:
            self.prototypes.weight.grad = None

    def _queue_active(self, epoch: int) -> bool:
        return self.recipe.queue_length > 0 and epoch >= self.recipe.queue_start_epoch

    @torch.no_grad()
    def codes(self, scores: torch.Tensor, crop: int, epoch: int) -> torch.Tensor:
        """Sinkhorn codes (B, P) of one large crop's scores, using the queue once it is full."""
        batch = scores.shape[0]
        if self._queue_active(epoch) and int(self.queued) >= self.recipe.queue_length:
            scores = torch.cat([self.prototypes(self.queue[crop]).float(), scores.float()])
        return sinkhorn_knopp(scores, self.recipe.sinkhorn_epsilon, self.recipe.sinkhorn_iterations)[-batch:]

    @torch.no_grad()
    def _push(self, z_large: list[torch.Tensor]) -> None:
        batch, length = z_large[0].shape[0], self.recipe.queue_length
        for crop, z in enumerate(z_large):
            self.queue[crop] = torch.cat([z.detach().float(), self.queue[crop]])[:length]
        self.queued.fill_(min(length, int(self.queued) + batch))

    def loss(
        self, z_large: list[torch.Tensor], z_small: list[torch.Tensor], indices: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        """Mean over (large crop i, other view v) of -mean_b sum_k q_i[b, k] log_softmax(p_v[b] / T)[k].

        Computed in fp32 with autocast disabled (scores, codes, softmax): bf16 rounds a score in [-1, 1] by up
        to 2e-3 (8 significant bits), which the Sinkhorn exponent's 1 / epsilon (20 to 50) turns into errors of
        several percent in the codes."""
        with full_precision(z_large[0]):
            scores = [self.prototypes(z.float()) for z in [*z_large, *z_small]]
            terms = []
            for i in range(len(z_large)):
                q = self.codes(scores[i].detach(), i, epoch)
                self.count_usage(q.argmax(dim=1))
                for v, p in enumerate(scores):
                    if v != i:
                        terms.append(-(q * F.log_softmax(p / self.recipe.temperature, dim=1)).sum(dim=1).mean())
        if self._queue_active(epoch):
            self._push(z_large)
        return torch.stack(terms).mean()

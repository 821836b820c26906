"""DeepClusterV2 (Caron et al., 2020): predict per-epoch spherical k-means assignments of a memory bank.

Choices (docs/SSL.md): the memory bank holds each sample's embedding of every large crop, indexed by
dataset index, and is filled by an initial no-grad pass (the FAIR way, so no epoch is wasted). At each epoch
start, head h runs spherical k-means on bank ``h mod large_crops``; its centroids become that head's
prototypes (never trained) and its labels the targets. The loss uses every view (large and small; FAIR),
scored against each head, cross-entropy at temperature T, ignoring samples without an assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.config.errors import UserError
from benchmark.config.profiles import SSLRecipe
from methods.api import CostTerm
from methods.core.cost import EpochWork
from methods.core.precision import full_precision
from methods.ssl.objective import SSLObjective
from methods.ssl.spherical_kmeans import spherical_kmeans

HEADS = 3


@dataclass(frozen=True)
class DeepClusterV2Recipe(SSLRecipe):
    """DeepClusterV2's recipe: the shared fields and DeepClusterV2's own.

    Attributes:
        kmeans_iterations: spherical k-means iterations per epoch.
    """

    kmeans_iterations: int = 10


class DeepClusterV2(SSLObjective):
    """DeepClusterV2's projector, memory bank, k-means prototypes and cluster cross-entropy."""

    name = "deepclusterv2"
    recipe_type = DeepClusterV2Recipe
    recipe: DeepClusterV2Recipe

    @classmethod
    def pretraining_cost(cls, recipe: DeepClusterV2Recipe, n_train: int) -> list[CostTerm]:
        """The steps, and the spherical k-means of every head at every epoch start: ``kmeans_iterations`` + 1
        passes over the bank (the final assignment is one more)."""
        passes = recipe.epochs * HEADS * (recipe.kmeans_iterations + 1)
        return [*super().pretraining_cost(recipe, n_train), CostTerm("ssl_kmeans", n_train, passes)]

    @classmethod
    def bench_epoch_work(cls, recipe: DeepClusterV2Recipe, rows: int, device: torch.device) -> EpochWork:
        """One Lloyd iteration of the spherical k-means (plus its final assignment: 2 passes) on
        ``max(rows, prototypes)`` random unit rows of the projector's width."""
        rows = max(rows, recipe.prototypes)
        x = F.normalize(torch.randn(rows, recipe.projector_out, device=device), dim=1)
        shape = f"{rows:,} x {recipe.projector_out}"
        label = f"DeepClusterV2 spherical k-means pass ({recipe.prototypes} prototypes, {shape})"

        def run() -> None:
            spherical_kmeans(x, recipe.prototypes, iterations=1, generator=torch.Generator().manual_seed(0))

        return EpochWork(label, 2 * rows, run)

    def __init__(self, feature_dim: int, recipe: DeepClusterV2Recipe, n_samples: int) -> None:
        super().__init__(feature_dim, recipe, n_samples)
        if recipe.prototypes > n_samples:
            raise UserError(
                f"DeepClusterV2 needs at most one prototype per image: ssl.deepclusterv2.prototypes={recipe.prototypes} "
                f"for {n_samples} target train images; lower it (--set ssl.deepclusterv2.prototypes=N) or use more images"
            )
        out = recipe.projector_out
        self.register_buffer("bank", torch.zeros(recipe.large_crops, n_samples, out))
        self.register_buffer("centroids", torch.zeros(HEADS, recipe.prototypes, out))
        self.register_buffer("assignments", torch.full((HEADS, n_samples), -1, dtype=torch.int64))

    def needs_bank(self) -> bool:
        return True

    @torch.no_grad()
    def fill_bank(self, z_large: list[torch.Tensor], indices: torch.Tensor) -> None:
        for crop, z in enumerate(z_large):
            self.bank[crop, indices] = z.detach().float()

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        super().on_epoch_start(epoch, generator)
        for head in range(HEADS):
            centroids, labels = spherical_kmeans(
                self.bank[head % self.recipe.large_crops], self.recipe.prototypes, self.recipe.kmeans_iterations, generator
            )
            self.centroids[head] = centroids
            self.assignments[head] = labels
        self.count_usage(self.assignments[0])

    def loss(
        self, z_large: list[torch.Tensor], z_small: list[torch.Tensor], indices: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        """Mean over heads of CE(cat over views of z_v @ centroids_h.T / T, assignments_h[indices] repeated),
        in fp32 with autocast disabled (like SwAV's scores)."""
        views = torch.cat([*z_large, *z_small]).float()
        n_views = len(z_large) + len(z_small)
        terms = []
        with full_precision(views):
            for head in range(HEADS):
                targets = self.assignments[head, indices].repeat(n_views)
                if not bool((targets >= 0).any()):  # cross-entropy over all-ignored targets is NaN
                    continue
                logits = views @ self.centroids[head].T / self.recipe.temperature
                terms.append(F.cross_entropy(logits, targets, ignore_index=-1))
        self.fill_bank(z_large, indices)
        return torch.stack(terms).mean() if terms else views.sum() * 0.0

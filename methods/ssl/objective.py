"""The SSL objective interface (``swav``, ``deepclusterv2``; listed by name in ``methods.ssl.ssl_registry``).

An objective owns everything of a self-supervised method except the backbone: the projector, the
prototypes and any state (queue, memory bank, cluster assignments). The pretraining loop
(``benchmark.services.pretrain``) calls, per step: ``before_step()``, ``project`` on the backbone features of every
view, ``loss(...)``, backward, ``after_backward(epoch)``, the optimiser step; and per epoch
``on_epoch_start(epoch, generator)``. ``usage()`` gives per-prototype assignment counts since the last
epoch start, for collapse detection.

An objective's recipe is the shared ``SSLRecipe`` plus the fields the objective declares itself, with their
defaults, in a frozen dataclass subclass of it (its ``recipe_type``); a profile may set both kinds of field
(``Profile.ssl``, ``Profile.ssl_overrides``), and ``resolve_recipe`` merges them.

An objective also declares its cost for ``bench`` and ``sweep --plan`` (``pretraining_cost``) and, when it does
per-epoch work besides its steps, how ``bench`` times that work (``bench_epoch_work``).
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import SSLRecipe
from methods.api import CostTerm
from methods.core.cost import EpochWork


class Projector(nn.Sequential):
    """Linear(D, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, out): (B, D) -> (B, out)."""

    def __init__(self, in_dim: int, hidden: int, out: int) -> None:
        super().__init__(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


class SSLObjective(nn.Module, metaclass=ABCMeta):
    """Projector + method state; subclasses define the loss.

    Args:
        feature_dim: D, the backbone's output width.
        recipe: the objective's effective recipe, a ``recipe_type`` (``methods.ssl.ssl_registry.ssl_recipe``).
        n_samples: N, size of the pretraining split (memory banks are indexed by dataset index).
    """

    name: ClassVar[str]
    #: The objective's recipe: ``SSLRecipe``, or a frozen dataclass subclass of it declaring the objective's own
    #: fields with their defaults.
    recipe_type: ClassVar[type[SSLRecipe]] = SSLRecipe

    @classmethod
    def own_fields(cls) -> dict[str, Any]:
        """The recipe fields this objective declares beyond the shared ``SSLRecipe``, with their defaults."""
        shared = {f.name for f in fields(SSLRecipe)}
        return {f.name: f.default for f in fields(cls.recipe_type) if f.name not in shared}

    @classmethod
    def resolve_recipe(cls, shared: SSLRecipe, overrides: Mapping[str, Any]) -> SSLRecipe:
        """The effective recipe: the ``shared`` values, this objective's declared defaults, then ``overrides``
        (the profile's values for this objective: shared fields or its own); a UserError for an unknown field."""
        known = [f.name for f in fields(cls.recipe_type)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise UserError(f"{cls.name} has no recipe field {', '.join(unknown)}; known: {', '.join(known)}")
        values = {f.name: getattr(shared, f.name) for f in fields(SSLRecipe)}
        return cls.recipe_type(**{**values, **overrides})

    @classmethod
    def pretraining_cost(cls, recipe: SSLRecipe, n_train: int) -> list[CostTerm]:
        """The device time of pretraining with ``recipe`` on ``n_train`` images, as ``CostTerm`` s: its steps at the
        ``ssl`` stage's speed (every objective's step is taken to cost the timed one's: the backbone dominates),
        then any per-epoch work of the objective's own."""
        return [CostTerm("ssl", n_train, recipe.epochs, recipe.batch_size)]

    @classmethod
    def bench_epoch_work(cls, recipe: SSLRecipe, rows: int, device: torch.device) -> EpochWork | None:
        """The per-epoch work that ``bench`` times (stage ``ssl_kmeans``) on at least ``rows`` random rows on
        ``device``; None (the default): the objective has none."""
        return None

    def __init__(self, feature_dim: int, recipe: SSLRecipe, n_samples: int) -> None:
        if not isinstance(recipe, self.recipe_type):
            raise TypeError(f"{self.name} needs a {self.recipe_type.__name__} (methods.ssl.ssl_registry.ssl_recipe)")
        super().__init__()
        self.recipe = recipe
        self.n_samples = n_samples
        self.projector = Projector(feature_dim, recipe.projector_hidden, recipe.projector_out)
        self.register_buffer("_usage", torch.zeros(recipe.prototypes, dtype=torch.int64), persistent=False)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) backbone features -> (B, out) unit-norm embeddings z (float32)."""
        return F.normalize(self.projector(features).float(), dim=1)

    def needs_bank(self) -> bool:
        """Whether ``fill_bank`` must be called once before the first epoch."""
        return False

    def fill_bank(self, z_large: list[torch.Tensor], indices: torch.Tensor) -> None:
        """Store the large crops' embeddings of the samples ``indices`` (objectives with a memory bank)."""

    def on_epoch_start(self, epoch: int, generator: torch.Generator) -> None:
        """Per-epoch work (DeepClusterV2: k-means on the bank); resets the usage counts."""
        self._usage.zero_()

    def before_step(self) -> None:
        """Called before each step's forward (SwAV: re-normalise the prototypes)."""

    def after_backward(self, epoch: int) -> None:
        """Called between backward and the optimiser step (SwAV: freeze the prototypes early on)."""

    @abstractmethod
    def loss(
        self, z_large: list[torch.Tensor], z_small: list[torch.Tensor], indices: torch.Tensor, epoch: int
    ) -> torch.Tensor:
        """The training loss of one batch.

        Args:
            z_large, z_small: per view, (B, out) unit-norm embeddings of the large and small crops.
            indices: (B,) dataset indices of the batch (for memory banks).
            epoch: the current epoch (queues and freezing depend on it).
        """

    def count_usage(self, assignments: torch.Tensor) -> None:
        """Add hard assignments (any shape, values in [0, P) or -1 = none) to the usage counts."""
        kept = assignments[assignments >= 0]
        self._usage += torch.bincount(kept.flatten(), minlength=self.recipe.prototypes)

    def usage(self) -> dict[str, float]:
        """Prototype usage since the epoch start: entropy (nats), entropy / ln P, prototypes used."""
        counts = self._usage.double()
        total = counts.sum()
        if total == 0:
            return {"usage_entropy": 0.0, "usage_entropy_ratio": 0.0, "prototypes_used": 0}
        p = counts[counts > 0] / total
        entropy = float(-(p * p.log()).sum())
        return {
            "usage_entropy": entropy,
            "usage_entropy_ratio": entropy / math.log(self.recipe.prototypes),
            "prototypes_used": int((counts > 0).sum()),
        }


def collapse_report(final_loss: float, usage: dict[str, float], prototypes: int) -> dict[str, object]:
    """Flag a collapsed pretraining: prototype usage near one prototype, or the loss stuck near ln P.

    ``collapsed`` is True when the usage entropy is under 10% of ln P (nearly every sample on a few
    prototypes) or the final loss is within 1% of ln P (the predictions stayed uniform: nothing learned).
    """
    ln_p = math.log(prototypes)
    reasons = []
    if usage["usage_entropy_ratio"] < 0.1:
        reasons.append(f"prototype usage entropy {usage['usage_entropy']:.3f} nats is under 10% of ln P = {ln_p:.3f}")
    if abs(final_loss - ln_p) < 0.01 * ln_p:
        reasons.append(f"final loss {final_loss:.4f} is stuck at ln P = {ln_p:.4f}")
    return {"collapsed": bool(reasons), "reasons": reasons, "ln_p": ln_p, "final_loss": final_loss, **usage}

"""DANN and CDAN: the classic adversarial UDA baselines (setting ``uda``), per docs/METHODS.md.

Both start from the harness's source model (the same one every method gets, so that the comparison with
the source-free methods is fair) and train backbone + head + a domain discriminator on labelled source and
unlabelled target batches::

    loss = CE(source logits, source labels) + trade_off * domain loss

The domain loss is the discriminator's binary cross-entropy (source = 1, target = 0); the discriminator sees
its input through a gradient-reversal layer whose coefficient follows ``grl_coefficient(progress, alpha)``, so the
discriminator learns to tell the domains apart while the features learn to make that impossible. The progress
is ``step / grl_horizon``: at ``paper`` each release's own (CDAN's ``calc_coeff``: alpha 10 over 10000 iterations;
TLlib's DANN ``WarmStartGradientReverseLayer``: alpha 1 over 1000), at ``quick`` the fraction of the run done
(``grl_horizon`` 0, alpha 10: the DANN paper's rule; an absolute horizon of thousands of steps would leave a
run of a few hundred steps with the adversarial term nearly off; docs/METHODS.md).

- DANN (Ganin et al., JMLR 2016): the discriminator sees the bottleneck features f (B, 256).
- CDAN (Long et al., NeurIPS 2018; "CADA" in the CluP paper's table): it sees the multilinear map
  ``g ⊗ f`` of the (detached) softmax predictions g and the features, (B, 7 * 256); CDAN+E additionally
  weights each sample by ``1 + exp(-H(g))`` (confident samples count more).

Details follow the authors' code (thuml/CDAN) and the Transfer-Learning-Library (tllib): the
discriminator Linear(d, 1024)-ReLU-Dropout(0.5)-Linear(1024, 1024)-ReLU-Dropout(0.5)-Linear(1024, 1),
one forward pass over the concatenated source + target batch (BatchNorm sees both domains), the
per-domain normalised sample weights of CDAN+E, and predictions detached in the multilinear map.
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.profiles import Profile
from methods.api import CostTerm, HParam, Method, Range, RunContext, SearchChoice, SearchFloat, Setting, sgd_hparams
from methods.core.data import batch_indices, normalise, supervised_augmentation
from methods.core.inputs import UdaData
from methods.core.losses import EPS
from methods.core.schedules import shot_lr_step
from methods.core.seeding import derive_seed
from methods.core.training import optimise, run_epochs, shot_optimizer

DISCRIMINATOR_HIDDEN = 1024


class GradientReversal(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by ``-coeff`` in the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad_output, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """``x`` unchanged; gradients flowing back through it are scaled by ``-coeff``."""
    return GradientReversal.apply(x, coeff)


def grl_coefficient(progress: float, alpha: float = 10.0) -> float:
    """DANN's schedule ``2 / (1 + exp(-alpha * p)) - 1`` for training progress p >= 0: 0 -> ~1 (CDAN's
    ``calc_coeff`` and TLlib's ``WarmStartGradientReverseLayer`` with lo 0, hi 1 are the same function)."""
    return 2.0 / (1.0 + math.exp(-alpha * progress)) - 1.0


def grl_progress(step: int, total: int, horizon: int) -> float:
    """The ramp's p at ``step`` (from 0) of ``total``: ``step / horizon`` (an absolute horizon of steps, as the
    releases count iterations; past it p > 1), or the fraction of the run done for ``horizon`` 0."""
    return step / (horizon if horizon > 0 else max(total, 1))


def multilinear_map(features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """CDAN's conditioning ``g ⊗ f`` flattened class-major, as in the authors' code.

    Args:
        features: (B, D) features f.
        probabilities: (B, C) class probabilities g.

    Returns:
        (B, C * D) with ``out[b, c * D + d] = g[b, c] * f[b, d]``.
    """
    return torch.bmm(probabilities.unsqueeze(2), features.unsqueeze(1)).flatten(start_dim=1)


def prediction_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """(B, C) probabilities -> (B,) entropies ``-sum_c p_c log(p_c + EPS)`` in nats."""
    return -(probabilities * torch.log(probabilities + EPS)).sum(dim=1)


class DomainDiscriminator(nn.Sequential):
    """Linear(d, h)-ReLU-Dropout(0.5)-Linear(h, h)-ReLU-Dropout(0.5)-Linear(h, 1): (B, d) -> (B, 1) logits
    of "this sample is from the source domain" (tllib's ``DomainDiscriminator`` without batch norm)."""

    def __init__(self, in_dim: int, hidden: int = DISCRIMINATOR_HIDDEN) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, 1),
        )


def domain_adversarial_loss(
    domain_logits: torch.Tensor, n_source: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, source = 1 and target = 0, each domain counting half.

    Args:
        domain_logits: (N,) or (N, 1) discriminator logits; the first ``n_source`` rows are source samples.
        n_source: number of source rows.
        weights: optional (N,) non-negative sample weights (CDAN+E); normalised to sum to 1 within each
            domain, as in the authors' code. None = plain means.

    Returns:
        Scalar ``0.5 * (weighted mean BCE on source + weighted mean BCE on target)``.
    """
    logits = domain_logits.reshape(-1)
    is_source = torch.zeros_like(logits)
    is_source[:n_source] = 1.0
    per_sample = F.binary_cross_entropy_with_logits(logits, is_source, reduction="none")
    if weights is None:
        weights = torch.ones_like(logits)
    weights = weights.detach()
    source_w, target_w = weights[:n_source], weights[n_source:]
    source_loss = (source_w * per_sample[:n_source]).sum() / source_w.sum()
    target_loss = (target_w * per_sample[n_source:]).sum() / target_w.sum()
    return 0.5 * (source_loss + target_loss)


def endless_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    """Shuffled index batches over ``range(n)`` (last partial batch dropped), reshuffled at every pass, forever."""
    while True:
        for indices in batch_indices(n, batch_size, generator, drop_last=True):
            yield indices.to(device)


class AdversarialAdaptation(Method):
    """The shared loop of DANN and CDAN; a subclass says only what the discriminator sees.

    One step: B source + B target images (same ``supervised_augmentation`` for both) -> one forward pass
    -> CE on the source logits + ``trade_off`` x domain loss, the discriminator input passing through the
    gradient-reversal layer at ``grl_coefficient(grl_progress(step, total steps, grl_horizon), grl_alpha)``. An epoch is one pass over the
    target train split; source batches come from their own generator seeded from the method's seed.
    Optimiser: SHOT's SGD (momentum 0.9, Nesterov, weight decay 1e-3) with the backbone at
    ``lr * backbone_lr_mult`` and head and discriminator at ``lr``, under SHOT's decaying schedule.
    """

    setting = Setting.UDA
    hparams_spec = {
        **sgd_hparams(
            1e-2,
            (1e-3, 1e-1),
            (1, 30),
            32,
            lr_help="lr of head and discriminator (backbone: x backbone_lr_mult)",
            batch_help="source images and target images per step (each)",
        ),
        "trade_off": HParam(
            1.0, SearchFloat(0.1, 3.0, log=True), "weight of the adversarial domain loss", Range.at_least(0)
        ),
        "grl_alpha": HParam(10.0, None, "steepness of the gradient-reversal ramp 2 / (1 + exp(-alpha p)) - 1",
                            Range.above(0)),
        "grl_horizon": HParam(0, None, "steps for the ramp's p to reach 1 (p = step / horizon); 0: the run's length",
                              Range.at_least(0)),
    }

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """Steps through the source network (the ``source`` stage), a source and a target batch per step."""
        return [CostTerm("source", n_target, hparams["epochs"], hparams["batch_size"], factor=2)]

    @abstractmethod
    def discriminator_input_dim(self, feature_dim: int, num_classes: int) -> int:
        """Width of what ``discriminator_input`` returns for features (B, feature_dim) and C classes."""

    @abstractmethod
    def discriminator_input(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(B, D) features and (B, C) logits -> (B, discriminator_input_dim) (before gradient reversal)."""

    def sample_weights(self, logits: torch.Tensor) -> torch.Tensor | None:
        """(B,) weights of the domain loss's samples, or None for uniform (DANN, CDAN without +E)."""
        return None

    def adapt(self, source_model: nn.Module, data: UdaData, ctx: RunContext) -> nn.Module:
        hp = self.hparams
        model = copy.deepcopy(source_model).train()
        num_classes = model.head.classifier.out_features
        in_dim = self.discriminator_input_dim(model.head.feature_dim, num_classes)
        discriminator = DomainDiscriminator(in_dim).to(data.target.images.device).train()
        optimizer = shot_optimizer(
            model.backbone.parameters(), model.head.parameters(), hp["lr"], hp["backbone_lr_mult"]
        )
        optimizer.add_param_group({"params": list(discriminator.parameters()), "lr": hp["lr"], "lr0": hp["lr"]})

        source, target = data.source, data.target.images
        source_generator = torch.Generator().manual_seed(derive_seed("source_batches", self.name, ctx.seed))
        source_batches = endless_batches(len(source), hp["batch_size"], source_generator, target.device)
        augment = supervised_augmentation()
        epoch_log: dict[str, list[torch.Tensor]] = {"classification_loss": [], "domain_loss": [], "domain_accuracy": []}

        def reset_log(epoch: int) -> None:
            for values in epoch_log.values():
                values.clear()

        def step(target_indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
            shot_lr_step(optimizer, index, total)
            source_indices = next(source_batches)
            n_source = len(source_indices)
            images = torch.cat([normalise(source.images[source_indices]), normalise(target[target_indices])])
            features = model.embed(augment(images))
            logits = model.head.classifier(features)
            coeff = grl_coefficient(grl_progress(index, total, hp["grl_horizon"]), hp["grl_alpha"])
            reversed_input = reverse_gradient(self.discriminator_input(features, logits), coeff)
            domain_logits = discriminator(reversed_input).squeeze(1)
            classification = F.cross_entropy(logits[:n_source], source.labels[source_indices])
            domain = domain_adversarial_loss(domain_logits, n_source, self.sample_weights(logits))
            loss = classification + hp["trade_off"] * domain
            optimise(optimizer, loss)
            with torch.no_grad():
                said_source = domain_logits > 0
                said_source[n_source:] = ~said_source[n_source:]
                epoch_log["classification_loss"].append(classification.detach())
                epoch_log["domain_loss"].append(domain.detach())
                epoch_log["domain_accuracy"].append(said_source.float().mean())
            return loss

        summary = run_epochs(
            len(target), hp["batch_size"], hp["epochs"], ctx.generator, step, self.name, reset_log, target.device,
            on_epoch_end=ctx.epoch_reporter(model, target),
        )
        ctx.stats["last_epoch"] = {
            "loss": summary["final_loss"],
            **{name: float(torch.stack(values).mean()) for name, values in epoch_log.items() if values},
        }
        return model


class Dann(AdversarialAdaptation):
    """DANN: the discriminator sees the bottleneck features (B, 256)."""

    name = "dann"
    label = "DANN"
    source_recipe = "dann"

    def discriminator_input_dim(self, feature_dim: int, num_classes: int) -> int:
        return feature_dim

    def discriminator_input(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return features


class Cdan(AdversarialAdaptation):
    """CDAN (+E by default): the discriminator sees ``softmax(logits) ⊗ features`` (B, 7 * 256).

    ``entropy_conditioning`` defaults to True because the authors' code (thuml/CDAN, ``--method``
    default ``CDAN+E``) runs CDAN+E, their best variant; set it to False for plain CDAN (tllib's default).
    The entropy weights are constants (computed from detached predictions, as in tllib).
    """

    name = "cdan"
    label = "CDAN"
    source_recipe = "cdan"
    hparams_spec = {
        **AdversarialAdaptation.hparams_spec,
        "entropy_conditioning": HParam(
            True, SearchChoice([True, False]), "CDAN+E: weight samples by 1 + exp(-entropy)"
        ),
    }

    def discriminator_input_dim(self, feature_dim: int, num_classes: int) -> int:
        return feature_dim * num_classes

    def discriminator_input(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return multilinear_map(features, logits.float().softmax(dim=1).detach())

    def sample_weights(self, logits: torch.Tensor) -> torch.Tensor | None:
        if not self.hparams["entropy_conditioning"]:
            return None
        return 1.0 + torch.exp(-prediction_entropy(logits.detach().float().softmax(dim=1)))

"""SHOT and SHOT-IM (Liang et al., ICML 2020), per docs/METHODS.md.

The classifier is frozen; backbone (0.1x lr) and bottleneck (1x lr) are trained on the unlabelled target
with information maximisation plus (SHOT only) cross-entropy on self-supervised pseudo-labels that are
refreshed at the start of every epoch by two rounds of nearest-centroid clustering.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.profiles import Profile
from methods.api import CostTerm, HParam, Method, Range, RunContext, SearchFloat, Setting, sgd_hparams
from methods.core.data import normalise, supervised_augmentation
from methods.core.inference import infer
from methods.core.inputs import SourceFreeData
from methods.core.losses import information_maximisation
from methods.core.precision import full_precision
from methods.core.schedules import shot_lr_step
from methods.core.training import optimise, run_epochs, shot_optimizer


def _nearest_centroid(features: torch.Tensor, weights: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Labels by max cosine similarity to centroids ``c_k = sum_i w_ik f_i / (1e-8 + sum_i w_ik)`` of the
    ``kept`` classes ((C,) bool); the others get no centroid (and so no sample)."""
    centroids = (weights.T @ features) / (1e-8 + weights.sum(dim=0)[:, None])
    similarity = F.normalize(features, dim=1) @ F.normalize(centroids, dim=1).T
    similarity[:, ~kept] = -float("inf")
    return similarity.argmax(dim=1)


def _predicted(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C,) bool: the classes that label at least one sample (SHOT's ``labelset``, ``cls_count > 0``)."""
    return torch.bincount(labels, minlength=num_classes) > 0


def shot_pseudo_labels(embeddings: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """SHOT's self-supervised pseudo-labels (``obtain_label`` of SHOT's ``object/image_target.py``, threshold 0).

    Args:
        embeddings: (N, E) bottleneck features of the target train split (eval mode).
        probabilities: (N, C) softmax outputs of the same pass.

    Returns:
        (N,) int64 labels: round 1 with soft centroids from the probabilities over the classes that are some
        sample's argmax, round 2 with hard centroids from the round-1 labels over the classes that received at
        least one sample. The centroid and similarity matmuls run with autocast disabled, in the inputs' dtype
        (float32 from ``infer``).
    """
    num_classes = probabilities.shape[1]
    ones = torch.ones(len(embeddings), 1, device=embeddings.device, dtype=embeddings.dtype)
    with full_precision(embeddings):
        features = F.normalize(torch.cat([embeddings, ones], dim=1), dim=1)
        kept = _predicted(probabilities.argmax(dim=1), num_classes)
        labels = _nearest_centroid(features, probabilities, kept)
        one_hot = F.one_hot(labels, num_classes).to(features.dtype)
        return _nearest_centroid(features, one_hot, _predicted(labels, num_classes))


class Shot(Method):
    """SHOT: information maximisation + self-supervised pseudo-labels (cls_par 0.3)."""

    name = "shot"
    label = "SHOT"
    setting = Setting.SFDA
    source_recipe = "shot"
    #: 2: round 1 of the pseudo-labels keeps only the classes that are some sample's argmax, as SHOT's code does.
    version = 2
    bench_projected = True
    hparams_spec = {
        **sgd_hparams(1e-2, (1e-3, 1e-1), (1, 30), 64, lr_help="lr of the bottleneck (backbone: x backbone_lr_mult)"),
        "cls_par": HParam(
            0.3, SearchFloat(0.0, 1.0), "weight of the pseudo-label cross-entropy", Range.at_least(0)
        ),
        "ent_par": HParam(
            1.0, SearchFloat(0.1, 2.0), "weight of the information-maximisation loss", Range.at_least(0)
        ),
    }

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """Steps through the source network (the ``source`` stage: mild where the source recipe may augment
        strongly, the network dominates), and features at every epoch start when pseudo-labels are on."""
        steps = CostTerm("source", n_target, hparams["epochs"], hparams["batch_size"])
        return [steps, CostTerm("infer", n_target, hparams["epochs"])] if hparams["cls_par"] > 0 else [steps]

    def adapt(self, source_model: nn.Module, data: SourceFreeData, ctx: RunContext) -> nn.Module:
        hp = self.hparams
        model = copy.deepcopy(source_model).train()
        model.head.classifier.requires_grad_(False)
        optimizer = shot_optimizer(model.backbone.parameters(), model.head.parameters(), hp["lr"], hp["backbone_lr_mult"])
        images = data.target.images
        augment = supervised_augmentation()
        pseudo = torch.empty(0, dtype=torch.long)

        def refresh(epoch: int) -> None:
            nonlocal pseudo
            if hp["cls_par"] > 0:
                outputs = infer(model, images, ctx.profile.eval_batch_size)
                pseudo = shot_pseudo_labels(outputs.embeddings, outputs.probabilities)

        def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
            shot_lr_step(optimizer, index, total)
            model.head.classifier.eval()  # frozen classifier (no BN in it; kept explicit as in SHOT)
            # float32 logits: under bf16 autocast the softmax statistics (entropies, mean prediction) and the
            # cross-entropy are computed in fp32 (a no-op in fp32).
            logits = model(augment(normalise(images[indices]))).float()
            loss = hp["ent_par"] * information_maximisation(logits.softmax(dim=1))
            if hp["cls_par"] > 0:
                loss = loss + hp["cls_par"] * F.cross_entropy(logits, pseudo[indices])
            optimise(optimizer, loss)
            return loss

        run_epochs(len(images), hp["batch_size"], hp["epochs"], ctx.generator, step, self.name, refresh, images.device,
                   on_epoch_end=ctx.epoch_reporter(model, images))
        return model


class ShotIM(Shot):
    """SHOT-IM: SHOT without pseudo-labels (information maximisation only)."""

    name = "shot_im"
    label = "SHOT-IM"
    version = 1  # no pseudo-labels: SHOT's version 2 changed nothing it runs
    bench_projected = False
    hparams_spec = {**Shot.hparams_spec, "cls_par": HParam(0.0, None, "fixed at 0: no pseudo-labels", Range(0, 0))}

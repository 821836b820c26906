"""AdaContrast, contrastive test-time adaptation (Chen, Wang, Darrell and Ebrahimi, CVPR 2022), per docs/METHODS.md.

The trained model (student) and a momentum copy of it (EMA of its parameters) see three views of each batch: a
weak view and two strong ones. The student's features of the weak view are matched, by cosine similarity, to
a memory bank of the momentum model's features and probabilities, and the mean probabilities of the ``k``
nearest bank rows give the refined pseudo-label (soft k-NN voting). Loss on the first strong view:
``alpha * CE(pseudo-label) + beta * InfoNCE(query, momentum key of the second strong view, queue negatives of
another pseudo-label) + gamma * (-H(mean prediction))``. The keys and their pseudo-labels enter a FIFO queue;
after the step, the momentum model's weak-view features and probabilities enter the bank (FIFO too). The pieces
are pure functions in ``methods.core.contrastive``. The student's last iterate is the result.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.errors import UserError
from methods.api import HParam, Method, Range, RunContext, SearchFloat, SearchInt, Setting, sgd_hparams
from methods.core.contrastive import RingBuffer, class_aware_info_nce, diversity_loss, ema_update, soft_knn_refine
from methods.core.data import normalise, standardise, strong_augmentation, supervised_augmentation, to_unit
from methods.core.inference import infer
from methods.core.inputs import SourceFreeData
from methods.core.models import Classifier
from methods.core.schedules import cosine_lr_step
from methods.core.training import optimise, run_epochs, shot_optimizer


def initial_bank(model: Classifier, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> RingBuffer:
    """The memory bank at the start (the authors' ``eval_and_label_dataset``): one eval-mode pass of ``model``
    over the (N, C, S, S) uint8 ``images``, rows in a random order (``generator``), all N of them (their
    ``queue_size: -1``). Stored: (N, E) L2-normalised float32 embeddings and (N, C) float32 softmax."""
    outputs = infer(model, images, batch_size)
    order = torch.randperm(len(images), generator=generator).to(images.device)
    return RingBuffer(F.normalize(outputs.embeddings, dim=1)[order], outputs.probabilities[order])


def initial_queue(size: int, dim: int, classes: int, generator: torch.Generator, device: torch.device) -> RingBuffer:
    """MoCo's queue at the start, as the authors build it: (size, dim) random unit rows and (size,) random labels
    (drawn from ``generator`` on the CPU)."""
    features = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
    labels = torch.randint(0, classes, (size,), generator=generator)
    return RingBuffer(features.to(device), labels.to(device))


class AdaContrast(Method):
    """AdaContrast: refined online pseudo-labels + class-aware momentum contrast + diversity; all of F, B, C trained."""

    name = "adacontrast"
    label = "AdaContrast"
    setting = Setting.SFDA
    version = 2  # 2: the strong views' colour jitter is FastColorJitter (was kornia's HSV ColorJitter)
    #: SHOT's network (bottleneck 256 + BN + weight-normed classifier), label-smoothed source: docs/METHODS.md.
    source_recipe = "shot"
    hparams_spec = {
        **sgd_hparams(2e-3, (2e-4, 2e-2), (1, 30), 128, lr_help="lr of B and C (F: x backbone_lr_mult)",
                      backbone="backbone (F)"),
        "weight_decay": HParam(1e-4, SearchFloat(1e-5, 1e-3, log=True), "SGD weight decay", Range.at_least(0)),
        "k": HParam(10, SearchInt(2, 20), "bank neighbours voting on each pseudo-label", Range.at_least(1)),
        "temperature": HParam(
            0.07, SearchFloat(0.03, 0.3, log=True), "InfoNCE temperature", Range.above(0)
        ),
        "ema": HParam(0.999, SearchFloat(0.99, 0.9999), "momentum of the key (EMA) encoder", Range(0, 1)),
        "queue_size": HParam(
            16384, SearchInt(1024, 65536, log=True), "keys in the contrastive queue", Range.at_least(1)
        ),
        "alpha": HParam(
            1.0, SearchFloat(0.0, 2.0), "weight of the pseudo-label cross-entropy", Range.at_least(0)
        ),
        "beta": HParam(1.0, SearchFloat(0.0, 2.0), "weight of the InfoNCE loss", Range.at_least(0)),
        "gamma": HParam(1.0, SearchFloat(0.0, 2.0), "weight of the diversity loss", Range.at_least(0)),
    }

    def adapt(self, source_model: Classifier, data: SourceFreeData, ctx: RunContext) -> nn.Module:
        hp = self.hparams
        images = data.target.images
        if hp["k"] > len(images):
            raise UserError(f"adacontrast: k={hp['k']} neighbours but the target train split has only "
                            f"{len(images)} images (the bank holds one row per image); lower k")
        model = copy.deepcopy(source_model)
        momentum = copy.deepcopy(source_model).requires_grad_(False)
        optimizer = shot_optimizer(
            model.backbone.parameters(), model.head.parameters(), hp["lr"], hp["backbone_lr_mult"],
            weight_decay=hp["weight_decay"],
        )
        bank = initial_bank(model, images, ctx.profile.eval_batch_size, ctx.generator)
        bank_features, bank_probabilities = bank.tensors
        queue = initial_queue(hp["queue_size"], bank_features.shape[1], bank_probabilities.shape[1], ctx.generator,
                              images.device)
        queue_features, queue_labels = queue.tensors
        weak, strong = supervised_augmentation(), strong_augmentation()
        model.train()
        momentum.train()  # as the authors' AdaMoCo: batch statistics in every forward, own running statistics

        def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
            cosine_lr_step(optimizer, index, total)
            batch = images[indices]
            weak_view = weak(normalise(batch))
            query_view, key_view = standardise(strong(to_unit(batch).repeat(2, 1, 1, 1))).chunk(2)
            with torch.no_grad():  # the student's weak view only queries the bank (its logits take no loss)
                pseudo_labels, _ = soft_knn_refine(model.embed(weak_view), bank_features, bank_probabilities, hp["k"])
            embeddings = model.embed(query_view)
            logits = model.head.classifier(embeddings).float()
            with torch.no_grad():
                ema_update(momentum, model, hp["ema"])
                keys = F.normalize(momentum.embed(key_view).float(), dim=1)
            loss = hp["alpha"] * F.cross_entropy(logits, pseudo_labels)
            loss = loss + hp["beta"] * class_aware_info_nce(
                F.normalize(embeddings.float(), dim=1), keys, queue_features, queue_labels, pseudo_labels,
                hp["temperature"],
            )
            loss = loss + hp["gamma"] * diversity_loss(logits.softmax(dim=1))
            optimise(optimizer, loss)
            queue.push(keys, pseudo_labels)  # after backward: the InfoNCE's graph holds the queue as it was
            with torch.no_grad():  # the slowly changing momentum model fills the bank
                slow = momentum.embed(weak_view)
                bank.push(F.normalize(slow.float(), dim=1), momentum.head.classifier(slow).float().softmax(dim=1))
            return loss

        run_epochs(len(images), hp["batch_size"], hp["epochs"], ctx.generator, step, self.name, device=images.device,
                   on_epoch_end=ctx.epoch_reporter(model, images))
        return model

"""CluP (Conti et al., BMVC 2022): cluster-level pseudo-labels + a target model trained on the kept subset.

Stage 1 (source model, frozen): k-means on the source backbone's features of the unlabelled target train
split; each sample takes its cluster's majority teacher label and purity; per class, only samples at or
above the Q-th percentile of purity are kept (``score="confidence"``: rank by the teacher's max softmax
instead). Stage 2: the target backbone's initialisation (``backbone``: source, imagenet, swav, deepclusterv2 or a
solo-learn checkpoint). Stage 3: that backbone + a fresh Linear(D -> 7) (for ``backbone="source"``, by default the
source model's own trained classifier, as the authors' code keeps it: ``source_head="keep"``) trained on the kept
subset with mixup, SGD and cosine annealing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile
from datasets.progress import log
from methods.api import HParam, Method, Range, RunContext, SearchChoice, SearchFloat, SearchInt, Setting
from methods.core.cost import BenchStep, CostTerm, TrainingStep, random_batch, timed_training
from methods.core.data import standardise, strong_augmentation, to_unit
from methods.core.inference import infer
from methods.core.inputs import SourceFreeData
from methods.core.kmeans import INITS
from methods.core.losses import mixup_cross_entropy
from methods.core.models import Classifier, LinearHead, build_backbone, imagenet_backbone
from methods.core.precision import prepare_for_training
from methods.core.pseudo_labels import Selection, cluster_pseudo_labels
from methods.core.schedules import cosine_lr_step
from methods.core.training import optimise, run_epochs
from methods.ssl.solo import load_solo_backbone

SSL_BACKBONES = ("swav", "deepclusterv2")
BACKBONES = ("source", "imagenet", *SSL_BACKBONES, "solo")
#: ``source_head`` for ``backbone="source"``: the source model's trained classifier, or a fresh linear head.
SOURCE_HEADS = ("keep", "fresh")


def target_backbone(hp: dict, source_model: Classifier, ctx: RunContext) -> nn.Module:
    """The initial target backbone (``hp["backbone"]``): a copy of the source backbone; ImageNet weights from a
    local file; SwAV or DeepClusterV2 pretrained on the unlabelled target train split (the harness's cached
    artifact); or a solo-learn checkpoint (``hp["solo_checkpoint"]``, stem ``hp["solo_stem"]`` for 7x7 stems)."""
    choice = hp["backbone"]
    if choice == "source":
        return copy.deepcopy(source_model.backbone)
    if choice in SSL_BACKBONES:
        if ctx.ssl_backbone is None:
            raise UserError(f"backbone={choice} needs the harness's pretraining service (RunContext.ssl_backbone)")
        pretrained = ctx.ssl_backbone(choice)
        ctx.stats["backbone_artifact"] = pretrained.path.name
        return copy.deepcopy(pretrained.backbone).train()
    if choice == "solo":
        if not hp["solo_checkpoint"]:
            raise UserError("backbone=solo needs --set solo_checkpoint=PATH (a solo-learn .ckpt)")
        backbone, _, info = load_solo_backbone(hp["solo_checkpoint"], hp["solo_stem"] or None)
        ctx.stats["backbone_artifact"] = f"solo:{info['source']}"
        return backbone
    if choice == "imagenet":
        return imagenet_backbone(ctx.profile)[0]
    raise UserError(f"unknown CluP backbone {choice!r}; known: {', '.join(BACKBONES)}")


@torch.no_grad()
def feature_dim(backbone: nn.Module, images: torch.Tensor) -> int:
    """Output width D of ``backbone`` on the run's images (one eval-mode forward of two images)."""
    was_training = backbone.training
    backbone.eval()
    dim = backbone(standardise(to_unit(images[:2]))).shape[1]
    backbone.train(was_training)
    return int(dim)


def stage3_optimizer(model: Classifier, hp: dict) -> torch.optim.SGD:
    """Stage 3's SGD (Nesterov, momentum 0.9) over the whole ``model`` at ``hp["lr"]`` (``lr0``: the cosine
    schedule's start) with ``hp["weight_decay"]``."""
    return torch.optim.SGD(
        [{"params": model.parameters(), "lr0": hp["lr"]}], lr=hp["lr"], momentum=0.9, nesterov=True,
        weight_decay=hp["weight_decay"],
    )


def stage3_views(augment: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) uint8 images -> their strongly augmented, standardised float views."""
    return standardise(augment(to_unit(images)))


def mixup_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """Mixup's cross-entropy of ``model`` on ``lam * x + (1 - lam) * x[perm]`` against (B,) labels ``y`` and
    ``y[perm]``."""
    return mixup_cross_entropy(model(lam * x + (1 - lam) * x[perm]), y, y[perm], lam)


def target_stem(hp: dict, profile: Profile) -> str:
    """The stem of the target backbone ``hp["backbone"]``: the SSL stem for an SSL backbone, else the profile's."""
    return (profile.ssl_stem or profile.stem) if CluP.ssl_objectives(hp) else profile.stem


def timed_stage3_step(hp: dict, profile: Profile, stem: str, batch: int, device: torch.device) -> TrainingStep:
    """A stage-3 step (``train_on_pseudo_labels``) on ``batch`` random images: a fresh backbone of ``stem`` + a
    linear head, strong augmentation, mixup (a fixed mix: the cost does not depend on it), SGD."""
    backbone, dim = build_backbone(profile.arch, stem, profile.width)
    model = Classifier(backbone, LinearHead(dim)).to(device).train()
    optimizer = stage3_optimizer(model, hp)
    model, numerics = timed_training(model, profile, device)
    augment = strong_augmentation()
    images, labels = random_batch(batch, profile.image_size, device)
    lam = 0.7

    def update(x: torch.Tensor) -> None:
        perm = torch.randperm(len(x), device=device)
        with numerics():
            loss = mixup_loss(model, x, labels, lam, perm)
        optimise(optimizer, loss)

    return TrainingStep(lambda: stage3_views(augment, images), update)


def train_on_pseudo_labels(
    model: Classifier, images: torch.Tensor, selection: Selection, hp: dict, ctx: RunContext
) -> None:
    """Stage 3: train the whole ``model`` on the kept images with their fixed pseudo-labels.

    Mixup with lambda ~ Beta(alpha, alpha) (one draw per batch from the run's generator), SGD (Nesterov),
    cosine-annealed lr over all steps.
    """
    kept = selection.mask.nonzero().squeeze(1)
    if len(kept) < 2:  # BatchNorm needs two samples in a training batch
        raise UserError(f"CluP kept {len(kept)} pseudo-labelled sample(s), fewer than 2; lower q")
    if len(kept) < hp["batch_size"]:  # a small dry run: every epoch is one step over all kept samples
        log(f"note: CluP kept {len(kept)} samples, fewer than one batch ({hp['batch_size']}): one step per epoch")
    labels = selection.labels[kept]
    optimizer = stage3_optimizer(model, hp)
    augment = strong_augmentation()
    beta = torch.distributions.Beta(hp["mixup_alpha"], hp["mixup_alpha"]) if hp["mixup_alpha"] > 0 else None
    model.train()

    def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
        cosine_lr_step(optimizer, index, total)
        x = stage3_views(augment, images[kept[indices]])
        y = labels[indices]
        if beta is None:
            loss = mixup_cross_entropy(model(x), y, y, 1.0)
        else:
            lam = float(beta.sample())
            perm = torch.randperm(len(x), generator=ctx.generator).to(x.device)
            loss = mixup_loss(model, x, y, lam, perm)
        optimise(optimizer, loss)
        return loss

    run_epochs(len(kept), hp["batch_size"], hp["epochs"], ctx.generator, step, "clup", device=images.device,
               on_epoch_end=ctx.epoch_reporter(model, images))


class CluP(Method):
    """CluP with cluster-purity (or, for the ablation, confidence) pseudo-label selection."""

    name = "clup"
    label = "CluP"
    setting = Setting.SFDA
    version = 2  # 2: the strong views' colour jitter is FastColorJitter (was kornia's HSV ColorJitter)
    source_recipe = "authors"
    bench_projected = True
    hparams_spec = {
        "backbone": HParam("source", SearchChoice(BACKBONES), "initial target backbone"),
        "source_head": HParam("keep", SearchChoice(SOURCE_HEADS), "backbone=source: keep the source model's trained "
                              "classifier (the authors') or train a fresh linear head; other backbones: always fresh"),
        "score": HParam("purity", SearchChoice(("purity", "confidence")), "pseudo-label score"),
        "clusters": HParam(1000, SearchInt(10, 2000, log=True), "k-means clusters K", Range.at_least(2)),
        # Compute settings of stage 1's k-means, not searched; the defaults are CluP's k-means before they were
        # settings, the paper profile sets its own (docs/METHODS.md, CluP).
        "kmeans_iters": HParam(20, None, "k-means Lloyd iterations per run (at most)", Range.at_least(1)),
        "kmeans_restarts": HParam(1, None, "k-means runs from different seeds; the lowest inertia is kept",
                                  Range.at_least(1)),
        "kmeans_init": HParam("random", SearchChoice(INITS), "k-means seeding: random or kmeans++"),
        # Q = 1 keeps no sample: stage 3 would take no step and store the untrained model.
        "q": HParam(0.8, SearchFloat(0.0, 0.95), "per-class percentile Q (kept fraction 1 - Q)",
                    Range(0, 1, high_inclusive=False)),
        "mixup_alpha": HParam(
            0.2, SearchFloat(0.0, 1.0), "mixup Beta(alpha, alpha); 0 disables", Range.at_least(0)
        ),
        "epochs": HParam(50, SearchInt(1, 100), "stage-3 epochs", Range.at_least(1)),
        "lr": HParam(0.1, SearchFloat(1e-3, 0.5, log=True), "stage-3 initial lr (cosine to 0)", Range.above(0)),
        "weight_decay": HParam(5e-4, SearchFloat(1e-5, 1e-2, log=True), "SGD weight decay", Range.at_least(0)),
        "batch_size": HParam(32, None, "images per step", Range.at_least(1)),
        "solo_checkpoint": HParam("", None, "backbone=solo: path of a solo-learn .ckpt"),
        "solo_stem": HParam("", None, "backbone=solo with a 7x7 stem: imagenet or clup"),
    }

    @classmethod
    def ssl_objectives(cls, hparams: dict[str, Any]) -> tuple[str, ...]:
        return (hparams["backbone"],) if hparams["backbone"] in SSL_BACKBONES else ()

    @classmethod
    def describe_hparams(cls, hparams: dict[str, Any]) -> str:
        return f"backbone {hparams['backbone']}"

    @classmethod
    def adaptation_cost(cls, hparams: dict[str, Any], profile: Profile, n_target: int) -> list[CostTerm]:
        """The source network's features once, stage 1's k-means (rows x clusters), then stage 3 on the kept
        (1 - q) share with this method's timed step (``bench_step``)."""
        kept = round((1 - hparams["q"]) * n_target)
        return [CostTerm("infer", n_target), CostTerm("kmeans", n_target, clusters=hparams["clusters"]),
                CostTerm(cls.name, kept, hparams["epochs"], hparams["batch_size"], stem=target_stem(hparams, profile))]

    @classmethod
    def bench_step(cls, hparams: dict[str, Any], profile: Profile) -> BenchStep:
        """Stage 3's step: strong augmentation and mixup cost more than the ``source`` stage's step."""
        stem = target_stem(hparams, profile)
        label = f"CluP step ({stem} stem, {profile.image_size} px, strong augmentation + mixup)"
        return BenchStep(label, hparams["batch_size"], stem, 2, partial(timed_stage3_step, hparams, profile, stem))

    def adapt(self, source_model: Classifier, data: SourceFreeData, ctx: RunContext) -> nn.Module:
        hp = self.hparams
        images = data.target.images
        teacher = infer(source_model, images, ctx.profile.eval_batch_size)
        selection = cluster_pseudo_labels(
            teacher.features, teacher.probabilities, hp["clusters"], hp["q"], ctx.seed, hp["score"],
            n_iter=hp["kmeans_iters"], n_redo=hp["kmeans_restarts"], init=hp["kmeans_init"],
        )
        ctx.stats["pseudo_labels"] = selection
        if hp["backbone"] == "source" and hp["source_head"] == "keep":
            model = copy.deepcopy(source_model).train()
        else:
            backbone = target_backbone(hp, source_model, ctx)
            model = Classifier(backbone, LinearHead(feature_dim(backbone, images)))
        prepare_for_training(model.to(images.device), ctx.profile)  # a fresh backbone (imagenet, solo) too
        train_on_pseudo_labels(model, images, selection, hp, ctx)
        return model

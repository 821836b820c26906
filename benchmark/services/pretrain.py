"""Self-supervised pretraining of a target backbone (SwAV, DeepClusterV2) on the unlabelled target train split.

The result is an artifact keyed by (method, dataset, its train-split hash, backbone, image size, SSL recipe,
seed, code version): built once, reused by every CluP run and every probe. Training writes a resumable
checkpoint every ``recipe.checkpoint_every`` epochs into ``<artifact>.partial/`` (a sibling that survives a
kill); the next call resumes from it, bit for bit on CPU (model, optimiser, objective state and every random
stream are restored), and the artifact itself appears only once complete.

Labels: only the images of the target train split are read (``UnlabelledImages``); no label is touched.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile, SSLRecipe
from benchmark.services.artifacts import artifact_dir, get_or_build, load_model, save_model
from benchmark.services.source import split_tensors
from datasets import registry
from datasets.cache import read_manifest
from datasets.progress import log
from methods.core.checkpoints import load_checkpoint, save_checkpoint
from methods.core.inputs import UnlabelledImages
from methods.core.lars import LARS
from methods.core.models import build_backbone
from methods.core.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from methods.core.training import run_epochs
from methods.ssl.base import SSLObjective, collapse_report
from methods.ssl.registry import get_ssl
from methods.ssl.views import MultiCrop

#: Bump when pretraining changes in a way that changes its result; old artifacts are then not reused.
SSL_CODE_VERSION = 1
CHECKPOINT = "checkpoint.pt"


@dataclass
class PretrainedBackbone:
    """A self-supervised backbone (fc = Identity, eval mode) and its artifact."""

    backbone: nn.Module
    feature_dim: int
    path: Path
    info: dict[str, Any]


def pretrain_key(ssl: str, dataset: str, profile: Profile, seed: int, train_sha: str) -> dict[str, Any]:
    """Everything that determines a pretrained backbone."""
    return {
        "ssl": ssl,
        "dataset": dataset,
        "train_images_sha256": train_sha,
        **profile.backbone_fields(),
        "recipe": asdict(profile.ssl_recipe(ssl)),
        "seed": seed,
        "code_version": SSL_CODE_VERSION,
    }


def lr_at(step: int, total: int, steps_per_epoch: int, lr: float, warmup_epochs: float) -> float:
    """Linear warm-up from 0 over ``warmup_epochs``, then cosine from ``lr`` to 0 at ``total`` steps."""
    warmup = min(total, round(warmup_epochs * steps_per_epoch))
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * lr * (1.0 + math.cos(math.pi * progress))


def ssl_optimizer(parameters: list[nn.Parameter], recipe: SSLRecipe) -> torch.optim.Optimizer:
    """LARS or plain SGD, per ``recipe.optimizer``."""
    if recipe.optimizer == "lars":
        return LARS(parameters, recipe.lr, recipe.momentum, recipe.weight_decay, recipe.lars_eta)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    raise UserError(f"unknown SSL optimizer {recipe.optimizer!r}; known: lars, sgd")


def _forward_views(backbone: nn.Module, objective: SSLObjective, views: list[torch.Tensor]) -> list[torch.Tensor]:
    """Embeddings z of each view. Views of one size go through the backbone concatenated (one BatchNorm
    batch per resolution, the FAIR choice), then are split back per view."""
    if not views:
        return []
    z = objective.project(backbone(torch.cat(views).contiguous(memory_format=torch.channels_last)))
    return list(z.chunk(len(views)))


@torch.no_grad()
def _fill_bank(backbone: nn.Module, objective: SSLObjective, images: torch.Tensor, crops: MultiCrop) -> None:
    """The initial no-grad pass that fills a memory bank with the large crops' embeddings (train mode BN)."""
    batch = objective.recipe.batch_size
    for start in range(0, len(images), batch):
        indices = torch.arange(start, min(start + batch, len(images)), device=images.device)
        large, _ = crops(images[indices])
        objective.fill_bank(_forward_views(backbone, objective, large), indices)


def train_ssl(
    ssl: str, target: UnlabelledImages, profile: Profile, seed: int, checkpoint_dir: Path
) -> tuple[nn.Module, int, dict[str, Any]]:
    """Pretrain a fresh backbone with ``ssl`` on ``target`` images, resuming from ``checkpoint_dir``.

    Args:
        ssl: registered objective name (``swav``, ``deepclusterv2``).
        target: the unlabelled target train images, (N, C, S, S) uint8 on the training device.
        profile: backbone (arch, stem, width, image size) and recipe (``profile.ssl_recipe(ssl)``).
        seed: the derived pretraining seed (batch order, augmentation, k-means, initialisation).
        checkpoint_dir: where resumable checkpoints go (created if missing).

    Returns:
        (backbone, feature dim D, stats: per-epoch history, collapse report, resumed-from epoch, seconds).
    """
    recipe = profile.ssl_recipe(ssl)
    images = target.images
    device = images.device
    generator = seed_everything(seed)
    backbone, dim = build_backbone(profile.arch, profile.stem, profile.width)
    objective = get_ssl(ssl)(dim, recipe, len(images))
    backbone, objective = backbone.to(device).to(memory_format=torch.channels_last), objective.to(device)
    parameters = [*backbone.parameters(), *objective.parameters()]
    optimizer = ssl_optimizer(parameters, recipe)
    crops = MultiCrop(recipe, recipe.large_size or profile.image_size)
    per_epoch = len(images) // recipe.batch_size
    history: list[dict[str, float]] = []
    first_epoch = 0
    checkpoint = checkpoint_dir / CHECKPOINT
    if checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        backbone.load_state_dict(state["backbone"])
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(generator, state["rng"])
        history, first_epoch = list(state["history"]), int(state["epoch"]) + 1
        log(f"{ssl}: resuming from the checkpoint of epoch {first_epoch} in {checkpoint_dir}")
    backbone.train()
    objective.train()
    if first_epoch == 0 and objective.needs_bank():
        _fill_bank(backbone, objective, images, crops)

    def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
        epoch = index // per_epoch
        for group in optimizer.param_groups:
            group["lr"] = lr_at(index, total, per_epoch, recipe.lr, recipe.warmup_epochs)
        objective.before_step()
        large, small = crops(images[indices])
        loss = objective.loss(
            _forward_views(backbone, objective, large), _forward_views(backbone, objective, small), indices, epoch
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        objective.after_backward(epoch)
        optimizer.step()
        return loss

    def end_of_epoch(epoch: int, loss: float) -> None:
        history.append({"epoch": epoch, "loss": loss, **objective.usage()})
        if (epoch + 1) % recipe.checkpoint_every == 0 or epoch + 1 == recipe.epochs:
            save_checkpoint(checkpoint, {
                "backbone": backbone.state_dict(), "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(), "rng": rng_state(generator), "epoch": epoch, "history": history,
            })

    stats = run_epochs(
        len(images), recipe.batch_size, recipe.epochs, generator, step, f"{ssl} {profile.name}",
        on_epoch_start=lambda epoch: objective.on_epoch_start(epoch, generator),
        device=device, first_epoch=first_epoch, on_epoch_end=end_of_epoch,
    )
    final = history[-1]  # never empty: a run ends with its last epoch, in this call or the checkpoint's
    usage = {k: final[k] for k in ("usage_entropy", "usage_entropy_ratio", "prototypes_used")}
    collapse = collapse_report(float(final["loss"]), usage, recipe.prototypes)
    if collapse["collapsed"]:
        log(f"[bold red]{ssl} pretraining collapsed[/]: {'; '.join(collapse['reasons'])}")
    return backbone.eval(), dim, {
        "history": history, "collapse": collapse, "resumed_from_epoch": first_epoch,
        "seconds_this_call": stats["seconds"], "steps": stats["steps"],
    }


def get_pretrained_backbone(ssl: str, dataset: str, profile: Profile, seed: int, device: torch.device) -> PretrainedBackbone:
    """The ``ssl`` backbone pretrained on ``dataset``'s train images at ``profile`` and ``seed``; built if missing.

    Pretraining seed: ``derive_seed("ssl", ssl, dataset, seed)``.
    """
    get_ssl(ssl)  # a clear error for an unknown name before any work
    train_sha = read_manifest(registry.ensure(dataset))["splits"]["train"]["images_sha256"]
    key = pretrain_key(ssl, dataset, profile, seed, train_sha)
    final = artifact_dir("ssl", key)
    partial = final.with_name(final.name + ".partial")

    def build(out: Path) -> None:
        train_seed = derive_seed("ssl", ssl, dataset, seed)
        images = split_tensors(dataset, "train", profile, device).images
        log(f"pretraining {ssl} on {dataset} ({len(images)} unlabelled images, profile {profile.name}, seed {seed})")
        backbone, dim, stats = train_ssl(ssl, UnlabelledImages(images), profile, train_seed, partial)
        info = {**key, "train_seed": train_seed, "feature_dim": dim, "device": str(device), **stats}
        save_model(out, "backbone.pt", backbone, key, info)

    path, built = get_or_build("ssl", key, build)
    if built:
        shutil.rmtree(partial, ignore_errors=True)
    backbone, dim = build_backbone(profile.arch, profile.stem, profile.width)
    info = load_model(path, "backbone.pt", backbone, built)
    return PretrainedBackbone(backbone=backbone.to(device).eval(), feature_dim=dim, path=path, info=info)

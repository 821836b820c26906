"""Self-supervised pretraining of a target backbone (SwAV, DeepClusterV2) on the unlabelled target train split.

The result is an artifact keyed by (method, dataset, its train-split hash, backbone with the profile's SSL stem,
image size, numerics, SSL recipe, seed, code version): built once, reused by every CluP run and every probe.
Each step's forward and loss run under the profile's ``training_numerics`` (bf16 autocast when asked; the
objectives keep their scores, codes and k-means in fp32); the backbone is always channels-last here and is
compiled when the profile asks (``methods.core.precision``). Training writes a resumable
checkpoint every ``recipe.checkpoint_every`` epochs into ``<artifact>.partial/`` (a sibling that survives a
kill); the next call resumes from it, bit for bit on CPU (model, optimiser, objective state and every random
stream are restored), and the artifact itself appears only once complete.

Labels: only the images of the target train split are read (``UnlabelledImages``); no label is touched.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.numerics import ensure_numerics
from benchmark.config.profiles import Profile, SSLRecipe
from benchmark.services.artifacts import artifact_dir, get_or_build, load_model, save_model
from benchmark.services.source import split_tensors
from datasets import registry
from datasets.cache import read_manifest
from datasets.progress import log
from methods.core.checkpoints import load_checkpoint, save_checkpoint
from methods.core.data import steps_per_epoch
from methods.core.inputs import UnlabelledImages
from methods.core.lars import LARS
from methods.core.models import build_backbone
from methods.core.precision import prepare_for_training, training_numerics
from methods.core.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from methods.core.training import run_epochs
from methods.ssl.objective import SSLObjective, collapse_report
from methods.ssl.ssl_registry import get_ssl, recipe_record, ssl_recipe
from methods.ssl.views import MultiCrop

#: Bump when pretraining changes in a way that changes its result; old artifacts are then not reused.
#: 2: the SSL stem (``Profile.ssl_stem``) and the numerics fields in the key; bf16 autocast when asked.
SSL_CODE_VERSION = 2
CHECKPOINT = "checkpoint.pt"


@dataclass
class PretrainedBackbone:
    """A self-supervised backbone (fc = Identity, eval mode) and its artifact."""

    backbone: nn.Module
    feature_dim: int
    path: Path
    info: dict[str, Any]


def pretrain_key(ssl: str, dataset: str, profile: Profile, seed: int, train_sha: str) -> dict[str, Any]:
    """Everything that determines a pretrained backbone (its recipe as ``recipe_record``: field set fixed for
    key stability; its stem is the profile's SSL stem)."""
    return {
        "ssl": ssl,
        "dataset": dataset,
        "train_images_sha256": train_sha,
        **profile.ssl_backbone_fields(),
        **profile.numerics_fields(),
        "recipe": recipe_record(ssl, asdict(profile.ssl), profile.ssl_overrides),
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
def _fill_bank(run: _Pretraining) -> None:
    """The initial no-grad pass that fills a memory bank with the large crops' embeddings (train mode BN, the
    training numerics)."""
    images, batch = run.images, run.recipe.batch_size
    for start in range(0, len(images), batch):
        indices = torch.arange(start, min(start + batch, len(images)), device=images.device)
        large, _ = run.crops(images[indices])
        with run.numerics():
            run.objective.fill_bank(_forward_views(run.backbone, run.objective, large), indices)


@dataclass
class _Pretraining:
    """One pretraining in progress: what it trains, its optimiser, views and random stream, the context its
    forward passes run in (``training_numerics``), and its history. ``step`` and ``end_of_epoch`` are
    ``run_epochs``' callbacks."""

    backbone: nn.Module
    feature_dim: int
    objective: SSLObjective
    optimizer: torch.optim.Optimizer
    crops: MultiCrop
    generator: torch.Generator
    images: torch.Tensor
    checkpoint: Path
    numerics: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    history: list[dict[str, float]] = field(default_factory=list)
    first_epoch: int = 0

    @property
    def recipe(self) -> SSLRecipe:
        return self.objective.recipe

    def resume(self, ssl: str) -> None:
        """Restore the last checkpoint, if there is one: modules, optimiser, random stream, history, next epoch."""
        if not self.checkpoint.is_file():
            return
        state = load_checkpoint(self.checkpoint)
        self.backbone.load_state_dict(state["backbone"])
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(self.generator, state["rng"])
        self.history, self.first_epoch = list(state["history"]), int(state["epoch"]) + 1
        log(f"{ssl}: resuming from the checkpoint of epoch {self.first_epoch} in {self.checkpoint.parent}")

    def step(self, indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
        """One optimiser step on the batch ``indices`` (step ``index`` of ``total``); returns its loss."""
        recipe, objective = self.recipe, self.objective
        per_epoch = steps_per_epoch(len(self.images), recipe.batch_size, drop_last=True)
        epoch = index // per_epoch
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(index, total, per_epoch, recipe.lr, recipe.warmup_epochs)
        objective.before_step()
        large, small = self.crops(self.images[indices])  # views in fp32, outside autocast
        with self.numerics():
            loss = objective.loss(
                _forward_views(self.backbone, objective, large), _forward_views(self.backbone, objective, small),
                indices, epoch,
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        objective.after_backward(epoch)
        self.optimizer.step()
        return loss

    def end_of_epoch(self, epoch: int, loss: float) -> None:
        """Record the epoch's loss and prototype usage; write a checkpoint every ``checkpoint_every`` epochs
        and after the last."""
        self.history.append({"epoch": epoch, "loss": loss, **self.objective.usage()})
        if (epoch + 1) % self.recipe.checkpoint_every == 0 or epoch + 1 == self.recipe.epochs:
            save_checkpoint(self.checkpoint, {
                "backbone": self.backbone.state_dict(), "objective": self.objective.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": rng_state(self.generator), "epoch": epoch,
                "history": self.history,
            })


def _start(ssl: str, profile: Profile, *, images: torch.Tensor, seed: int, checkpoint_dir: Path) -> _Pretraining:
    """Seed every random stream with ``seed``, then build a fresh backbone (the profile's SSL stem), the
    objective, its optimiser and views on the images' device (in this order: initialisation draws from the
    seeded streams). The backbone is channels-last whatever ``profile.channels_last`` (as before that field
    existed) and compiled when ``profile.compile``."""
    recipe = ssl_recipe(profile, ssl)
    device = images.device
    generator = seed_everything(seed)
    backbone, dim = build_backbone(profile.arch, profile.ssl_stem or profile.stem, profile.width)
    objective = get_ssl(ssl)(dim, recipe, len(images))
    backbone, objective = backbone.to(device).to(memory_format=torch.channels_last), objective.to(device)
    backbone = prepare_for_training(backbone, profile)
    optimizer = ssl_optimizer([*backbone.parameters(), *objective.parameters()], recipe)
    crops = MultiCrop(recipe, recipe.large_size or profile.image_size)
    return _Pretraining(backbone=backbone, feature_dim=dim, objective=objective, optimizer=optimizer, crops=crops,
                        generator=generator, images=images, checkpoint=checkpoint_dir / CHECKPOINT,
                        numerics=partial(training_numerics, profile, device))


def _collapse(ssl: str, history: list[dict[str, float]], prototypes: int) -> dict[str, object]:
    """The collapse report of the last epoch in ``history`` (logged when collapsed)."""
    final = history[-1]  # never empty: a run ends with its last epoch, in this call or the checkpoint's
    usage = {k: final[k] for k in ("usage_entropy", "usage_entropy_ratio", "prototypes_used")}
    collapse = collapse_report(float(final["loss"]), usage, prototypes)
    if collapse["collapsed"]:
        log(f"[bold red]{ssl} pretraining collapsed[/]: {'; '.join(collapse['reasons'])}")
    return collapse


def train_ssl(
    ssl: str, target: UnlabelledImages, profile: Profile, *, seed: int, checkpoint_dir: Path
) -> tuple[nn.Module, int, dict[str, Any]]:
    """Pretrain a fresh backbone with ``ssl`` on ``target`` images, resuming from ``checkpoint_dir``.

    Args:
        ssl: registered objective name (``swav``, ``deepclusterv2``).
        target: the unlabelled target train images, (N, C, S, S) uint8 on the training device.
        profile: backbone (arch, stem, width, image size) and recipe (``ssl_recipe(profile, ssl)``).
        seed: the derived pretraining seed (batch order, augmentation, k-means, initialisation).
        checkpoint_dir: where resumable checkpoints go (created if missing).

    Returns:
        (backbone, feature dim D, stats: per-epoch history, collapse report, resumed-from epoch, seconds).
    """
    run = _start(ssl, profile, images=target.images, seed=seed, checkpoint_dir=checkpoint_dir)
    run.resume(ssl)
    run.backbone.train()
    run.objective.train()
    if run.first_epoch == 0 and run.objective.needs_bank():
        _fill_bank(run)
    recipe, generator = run.recipe, run.generator
    stats = run_epochs(
        len(run.images), recipe.batch_size, recipe.epochs, generator, run.step, f"{ssl} {profile.name}",
        on_epoch_start=lambda epoch: run.objective.on_epoch_start(epoch, generator),
        device=run.images.device, first_epoch=run.first_epoch, on_epoch_end=run.end_of_epoch,
    )
    return run.backbone.eval(), run.feature_dim, {
        "history": run.history, "collapse": _collapse(ssl, run.history, recipe.prototypes),
        "resumed_from_epoch": run.first_epoch, "seconds_this_call": stats["seconds"], "steps": stats["steps"],
    }


def get_pretrained_backbone(ssl: str, dataset: str, profile: Profile, seed: int, device: torch.device) -> PretrainedBackbone:
    """The ``ssl`` backbone pretrained on ``dataset``'s train images at ``profile`` and ``seed``; built if missing.

    Pretraining seed: ``derive_seed("ssl", ssl, dataset, seed)``.
    """
    get_ssl(ssl)  # a clear error for an unknown name before any work
    ensure_numerics(profile.numerics)
    train_sha = read_manifest(registry.ensure(dataset))["splits"]["train"]["images_sha256"]
    key = pretrain_key(ssl, dataset, profile, seed, train_sha)
    final = artifact_dir("ssl", key)
    partial = final.with_name(final.name + ".partial")

    def build(out: Path) -> None:
        train_seed = derive_seed("ssl", ssl, dataset, seed)
        images = split_tensors(dataset, "train", profile, device).images
        log(f"pretraining {ssl} on {dataset} ({len(images)} unlabelled images, profile {profile.name}, seed {seed})")
        backbone, dim, stats = train_ssl(ssl, UnlabelledImages(images), profile, seed=train_seed,
                                         checkpoint_dir=partial)
        info = {**key, "train_seed": train_seed, "feature_dim": dim, "device": str(device), **stats}
        save_model(out, "backbone.pt", backbone, key, info)

    path, built = get_or_build("ssl", key, build)
    backbone, dim = build_backbone(profile.arch, profile.ssl_stem or profile.stem, profile.width)
    info = load_model(path, "backbone.pt", backbone, built)  # may rebuild a damaged artifact
    if info["built_now"]:
        shutil.rmtree(partial, ignore_errors=True)
    return PretrainedBackbone(backbone=backbone.to(device).eval(), feature_dim=dim, path=path, info=info)

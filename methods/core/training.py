"""Training loops shared by source training and the adaptation methods.

``run_epochs`` owns what every loop repeats (seeded batch order, epochs, progress bar, loss tracking,
timing); a method supplies only ``step(indices, step, total) -> loss`` and, optionally,
``on_epoch_start(epoch)`` and ``on_epoch_end(epoch, loss)``. ``epoch_reporter`` builds the ``on_epoch_end`` that
reports a training curve (``RunContext.epoch_reporter``). ``train_supervised`` trains the source model (either
source recipe) on top of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from benchmark.config.profiles import SourceRecipe
from datasets.progress import progress_bar
from methods.core.data import (
    batch_indices,
    standardise,
    steps_per_epoch,
    strong_augmentation,
    supervised_augmentation,
    to_unit,
)
from methods.core.inference import infer
from methods.core.precision import full_precision
from methods.core.schedules import shot_lr_step
from methods.core.validators import fixed_subset, im_score

StepFn = Callable[[torch.Tensor, int, int], torch.Tensor]
#: Receives one epoch's values (``RunContext.report``): ``report(epoch, {"loss": ..., "im": ...})``.
EpochReport = Callable[[int, Mapping[str, float]], None]
EpochEnd = Callable[[int, float], None]
#: Target train images the per-epoch ``im`` is computed on: a fixed, evenly spread subset, so that the curve costs
#: one small eval-mode forward pass per epoch (at ``quick``, about 1% of a SHOT epoch over 8000 images).
CURVE_SAMPLES = 256

__all__ = [
    "CURVE_SAMPLES", "EpochEnd", "EpochReport", "StepFn", "epoch_reporter", "optimise", "run_epochs",
    "shot_optimizer", "supervised_views", "train_supervised",
]


def shot_optimizer(
    backbone_params: Iterable[nn.Parameter],
    head_params: Iterable[nn.Parameter],
    lr: float,
    backbone_lr_mult: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-3,
    nesterov: bool = True,
) -> torch.optim.SGD:
    """SGD with the backbone at ``lr * backbone_lr_mult`` and the head at ``lr``; each group remembers ``lr0``.

    Parameters with ``requires_grad=False`` (e.g. SHOT's frozen classifier) are left out.
    """
    groups = [
        {"params": [p for p in backbone_params if p.requires_grad], "lr": lr * backbone_lr_mult},
        {"params": [p for p in head_params if p.requires_grad], "lr": lr},
    ]
    for group in groups:
        group["lr0"] = group["lr"]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward (outside any autocast region the loss was computed in), step."""
    optimizer.zero_grad(set_to_none=True)
    with full_precision(loss):
        loss.backward()
    optimizer.step()


def run_epochs(
    n: int,
    batch_size: int,
    epochs: int,
    generator: torch.Generator,
    step: StepFn,
    description: str,
    on_epoch_start: Callable[[int], None] | None = None,
    device: torch.device | str = "cpu",
    first_epoch: int = 0,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Drive ``epochs`` passes of shuffled mini-batches over ``range(n)`` (last partial batch dropped).

    Args:
        n: number of training samples.
        batch_size: samples per step.
        epochs: passes over the data.
        generator: CPU generator fixing the batch order.
        step: called as ``step(indices (B,) on device, step index, total steps)``; trains and returns the loss.
        description: progress-bar label.
        on_epoch_start: called with the epoch index before its first step (e.g. to refresh pseudo-labels).
        device: where the index tensors are sent.
        first_epoch: resume here (epochs before it count as done; step indices continue from them).
        on_epoch_end: called with (epoch index, mean loss of that epoch) after its last step (checkpoints).

    Returns:
        ``{"final_loss": mean loss of the last epoch, "seconds": wall time, "steps": total steps}``.
    """
    start = time.perf_counter()
    per_epoch = steps_per_epoch(n, batch_size, drop_last=True)
    total = per_epoch * epochs
    done, epoch_loss = per_epoch * first_epoch, float("nan")
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, completed=done)
        for epoch in range(first_epoch, epochs):
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            losses = []
            for indices in batch_indices(n, batch_size, generator, drop_last=True):
                losses.append(step(indices.to(device), done, total).detach())
                done += 1
                bar.update(task, advance=1)
            epoch_loss = float(torch.stack(losses).mean()) if losses else float("nan")
            bar.update(task, description=f"{description} (epoch {epoch + 1}/{epochs}, loss {epoch_loss:.3f})")
            if on_epoch_end is not None:
                on_epoch_end(epoch, epoch_loss)
    return {"final_loss": epoch_loss, "seconds": time.perf_counter() - start, "steps": total}


def epoch_reporter(
    report: EpochReport, model: nn.Module, images: torch.Tensor, batch_size: int = CURVE_SAMPLES,
    samples: int = CURVE_SAMPLES,
) -> EpochEnd:
    """An ``on_epoch_end`` for ``run_epochs`` that reports ``{"loss": the epoch's mean training loss, "im": the
    information-maximisation validator of ``model`` on a fixed subset of ``images``}`` to ``report``.

    The validator is label-free: ``images`` are the target train images a method already has (never the test
    split). It is one eval-mode pass (``infer``: no augmentation, BatchNorm statistics untouched, train mode
    restored, no random number drawn) over ``samples`` images spread evenly over the split, so reporting leaves
    training exactly as it was and costs one small forward pass per epoch.
    """
    subset = images[fixed_subset(len(images), samples).to(images.device)]

    def on_epoch_end(epoch: int, loss: float) -> None:
        report(epoch, {"loss": loss, "im": im_score(infer(model, subset, batch_size))})

    return on_epoch_end


def random_grey(x: torch.Tensor, probability: float) -> torch.Tensor:
    """(B, 3, S, S) floats in [0, 1]: each image turned greyscale (ITU-R 601 luminance as kornia/torchvision,
    replicated to 3 channels) with ``probability``, one draw per image from torch's global RNG."""
    mask = torch.rand(x.shape[0], device=x.device) < probability
    grey = rgb_to_grayscale(x).expand_as(x)
    return torch.where(mask.view(-1, 1, 1, 1), grey, x)


def supervised_views(augmentation: str, grey_probability: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 (B, C, S, S) images -> augmented, normalised float views (``SourceRecipe.augmentation``: ``mild``
    or ``strong``; ``SourceRecipe.grey_probability``: random greyscale first, skipped, with no RNG draw, at 0)."""
    unit = to_unit if grey_probability <= 0.0 else (lambda batch: random_grey(to_unit(batch), grey_probability))
    if augmentation == "mild":
        mild = supervised_augmentation()
        return lambda batch: mild(standardise(unit(batch)))
    if augmentation == "strong":
        strong = strong_augmentation()
        return lambda batch: standardise(strong(unit(batch)))
    raise ValueError(f"unknown source augmentation {augmentation!r}; known: mild, strong")


def train_supervised(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: SourceRecipe,
    generator: torch.Generator,
    description: str = "train",
    on_epoch_end: EpochEnd | None = None,
) -> dict[str, float]:
    """Train ``model`` (a ``Classifier``) in place on labelled uint8 images with a source recipe.

    Args:
        model: backbone + head, already on the device of ``images``.
        images: (N, C, S, S) uint8 on the device.
        labels: (N,) int64 on the device.
        recipe: optimiser, schedule (``shot``: per step; ``exponential``: per epoch), augmentation, epochs,
            batch size, label smoothing.
        generator: CPU generator that orders the batches (seeded by the caller).
        description: progress-bar label.
        on_epoch_end: called with (epoch, mean loss) after each epoch (``run_epochs``; a training curve).
    """
    views = supervised_views(recipe.augmentation, recipe.grey_probability)
    optimizer = shot_optimizer(
        model.backbone.parameters(), model.head.parameters(), recipe.lr, recipe.backbone_lr_mult,
        recipe.momentum, recipe.weight_decay, recipe.nesterov,
    )
    per_epoch = steps_per_epoch(len(images), recipe.batch_size, drop_last=True)
    model.train()

    # EMA of parameters and buffers (BatchNorm statistics included), updated after every step; it becomes the model.
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
           if recipe.ema_decay > 0.0 else None)

    def step(indices: torch.Tensor, index: int, total: int) -> torch.Tensor:
        if recipe.schedule == "exponential":
            for group in optimizer.param_groups:
                group["lr"] = group["lr0"] * recipe.exp_gamma ** (index // per_epoch)
        else:
            shot_lr_step(optimizer, index, total, recipe.schedule_gamma, recipe.schedule_power)
        loss = F.cross_entropy(model(views(images[indices])), labels[indices], label_smoothing=recipe.label_smoothing)
        optimise(optimizer, loss)
        if ema is not None:
            ema.update_parameters(model)
        return loss

    stats = run_epochs(len(images), recipe.batch_size, recipe.epochs, generator, step, description, device=images.device,
                       on_epoch_end=on_epoch_end)
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return stats

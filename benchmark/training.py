"""Supervised training with SHOT's recipe: SGD (Nesterov), two lr groups, per-step polynomial decay.

Used for the source model (labelled source train split) and, by the methods issue, for the labelled-target
oracle. Inputs are uint8 tensors already on the device (see ``benchmark.data``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data import batch_indices, normalise, steps_per_epoch, supervised_augmentation
from benchmark.profiles import SourceRecipe
from benchmark.progress import progress_bar


def shot_optimizer(
    backbone_params: Iterable[nn.Parameter], head_params: Iterable[nn.Parameter], recipe: SourceRecipe
) -> torch.optim.SGD:
    """SGD with the backbone at ``lr * backbone_lr_mult`` and the head at ``lr``; each group remembers ``lr0``."""
    groups = [
        {"params": list(backbone_params), "lr": recipe.lr * recipe.backbone_lr_mult},
        {"params": list(head_params), "lr": recipe.lr},
    ]
    for group in groups:
        group["lr0"] = group["lr"]
    return torch.optim.SGD(
        groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov
    )


def shot_lr_step(optimizer: torch.optim.Optimizer, step: int, total_steps: int, gamma: float, power: float) -> None:
    """Set every group's lr to ``lr0 * (1 + gamma * step / total_steps) ** -power`` (SHOT's ``lr_scheduler``)."""
    decay = (1.0 + gamma * step / max(total_steps, 1)) ** (-power)
    for group in optimizer.param_groups:
        group["lr"] = group["lr0"] * decay


def train_supervised(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    recipe: SourceRecipe,
    generator: torch.Generator,
    description: str = "train",
) -> dict[str, float]:
    """Train ``model`` (a ``Classifier``) in place on labelled uint8 images.

    Args:
        model: backbone + head, already on the device of ``images``.
        images: (N, C, S, S) uint8 on the device.
        labels: (N,) int64 on the device.
        recipe: optimiser, schedule, epochs, batch size, label smoothing.
        generator: CPU generator that orders the batches (seeded by the caller).
        description: progress-bar label.

    Returns:
        ``{"final_loss": mean loss of the last epoch, "seconds": wall time}``.
    """
    start = time.perf_counter()
    augment = supervised_augmentation()
    optimizer = shot_optimizer(model.backbone.parameters(), model.head.parameters(), recipe)
    per_epoch = steps_per_epoch(len(images), recipe.batch_size, drop_last=True)
    total = per_epoch * recipe.epochs
    step, epoch_loss = 0, float("nan")
    model.train()
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, status="")
        for epoch in range(recipe.epochs):
            losses = []
            for index in batch_indices(len(images), recipe.batch_size, generator, drop_last=True):
                index = index.to(images.device)
                shot_lr_step(optimizer, step, total, recipe.schedule_gamma, recipe.schedule_power)
                x = augment(normalise(images[index]))
                loss = F.cross_entropy(model(x), labels[index], label_smoothing=recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                step += 1
                bar.update(task, advance=1)
            epoch_loss = float(torch.stack(losses).mean())
            bar.update(task, status=f"epoch {epoch + 1}/{recipe.epochs} loss {epoch_loss:.3f}")
    return {"final_loss": epoch_loss, "seconds": time.perf_counter() - start}

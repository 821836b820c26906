"""Learning-rate schedules stepped per iteration on optimisers whose groups remember their ``lr0``.

``shot_lr_step`` is SHOT's decay; ``cosine_lr_step`` is the cosine annealing of AdaContrast's code
(``adjust_learning_rate`` with ``cos: true``) and of CluP's. Both set every group's lr from its own ``lr0``
(``shot_optimizer`` records it), so a backbone group at ``lr * backbone_lr_mult`` keeps its ratio to the head.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cosine_lr_step", "shot_lr_step"]


def shot_lr_step(optimizer: torch.optim.Optimizer, step: int, total_steps: int, gamma: float = 10.0, power: float = 0.75) -> None:
    """Set every group's lr to ``lr0 * (1 + gamma * step / total_steps) ** -power`` (SHOT's ``lr_scheduler``)."""
    decay = (1.0 + gamma * step / max(total_steps, 1)) ** (-power)
    for group in optimizer.param_groups:
        group["lr"] = group["lr0"] * decay


def cosine_lr_step(optimizer: torch.optim.Optimizer, step: int, total_steps: int) -> None:
    """Set every group's lr to ``lr0 * 0.5 * (1 + cos(pi * step / total_steps))``: ``lr0`` at step 0, 0 at the end."""
    decay = 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))
    for group in optimizer.param_groups:
        group["lr"] = group["lr0"] * decay

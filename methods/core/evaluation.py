"""Evaluation of a network on a labelled split (the scores themselves: ``methods.core.scores``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods.core.inference import infer
from methods.core.scores import Evaluation, score_predictions


def evaluate(model: nn.Module, images: torch.Tensor, labels: np.ndarray, batch_size: int = 512) -> Evaluation:
    """Top-1 / per-class recall / confusion of ``model`` on uint8 ``images`` (N, C, S, S) with ``labels`` (N,)."""
    logits = infer(model, images, batch_size).logits
    return score_predictions(logits.argmax(1).cpu().numpy(), labels)

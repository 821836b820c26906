"""Eval-mode passes over a split that collect what methods and validators need, in one forward each."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.data import normalise
from benchmark.models import Classifier


@dataclass(frozen=True)
class Outputs:
    """Per-sample outputs of a classifier, on the images' device.

    Attributes:
        features: (N, D) backbone features (after global average pooling).
        embeddings: (N, E) head features before the last linear layer (SHOT: the 256-d bottleneck).
        logits: (N, C) float32.
    """

    features: torch.Tensor
    embeddings: torch.Tensor
    logits: torch.Tensor

    @property
    def probabilities(self) -> torch.Tensor:
        """(N, C) softmax of the logits."""
        return self.logits.softmax(dim=1)


@torch.no_grad()
def infer(model: Classifier, images: torch.Tensor, batch_size: int = 512) -> Outputs:
    """One eval-mode pass over uint8 ``images`` (N, C, S, S); the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    features, embeddings, logits = [], [], []
    for start in range(0, len(images), batch_size):
        f = model.backbone(normalise(images[start : start + batch_size]))
        e = model.head.embed(f)
        features.append(f.float())
        embeddings.append(e.float())
        logits.append(model.head.classifier(e).float())
    model.train(was_training)
    return Outputs(torch.cat(features), torch.cat(embeddings), torch.cat(logits))

"""Eval-mode passes over a split that collect what methods and validators need, in one forward each.

Under autocast (``methods.core.precision.training_numerics``: a method's refresh pass inside training) the
network runs in bf16, but every tensor returned here is float32, so what is computed from it (banks,
centroids, softmax statistics) starts from float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from methods.core.data import normalise
from methods.core.models import Classifier


@dataclass(frozen=True)
class Outputs:
    """Per-sample outputs of a classifier, on the images' device, float32 (also when computed under autocast).

    Attributes:
        features: (N, D) backbone features (after global average pooling).
        embeddings: (N, E) head features before the last linear layer (SHOT: the 256-d bottleneck).
        logits: (N, C).
    """

    features: torch.Tensor
    embeddings: torch.Tensor
    logits: torch.Tensor

    @property
    def probabilities(self) -> torch.Tensor:
        """(N, C) float32 softmax of the logits."""
        return self.logits.softmax(dim=1)


@torch.no_grad()
def backbone_features(backbone: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, C, S, S) uint8 -> (N, D) float32 features of ``backbone`` in eval mode (its mode is restored),
    computed ``batch_size`` images at a time (in bf16 under autocast, returned as float32)."""
    was_training = backbone.training
    backbone.eval()
    features = [backbone(normalise(images[start : start + batch_size])).float() for start in range(0, len(images), batch_size)]
    backbone.train(was_training)
    return torch.cat(features)


@torch.no_grad()
def infer(model: Classifier, images: torch.Tensor, batch_size: int = 512) -> Outputs:
    """One eval-mode pass over uint8 ``images`` (N, C, S, S); the model's train/eval mode is restored.

    The head sees the same ``batch_size`` slices as the backbone, so results do not depend on how the two
    passes are split."""
    was_training = model.training
    model.eval()
    features = backbone_features(model.backbone, images, batch_size)
    embeddings, logits = [], []
    for start in range(0, len(features), batch_size):
        e = model.head.embed(features[start : start + batch_size])
        embeddings.append(e.float())
        logits.append(model.head.classifier(e).float())
    model.train(was_training)
    return Outputs(features, torch.cat(embeddings), torch.cat(logits))

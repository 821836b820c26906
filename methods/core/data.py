"""Images as tensors on the device: uint8 at the profile's size, normalised per batch, augmented in batch.

The prepared cache holds uint8 (N, H, W, C) arrays at each dataset's native size. A run resizes a split
once to the profile's input size and keeps it on the device as uint8 (N, C, S, S) (C = 1 for grey
datasets; replicated to 3 channels per batch, never stored). Augmentation is batched with per-sample
randomness (kornia), so there is no per-image Python in the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.core.colour import FastColorJitter
from methods.core.precision import full_precision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "batch_indices", "normalise", "resize_to_tensor", "standardise", "steps_per_epoch", "supervised_augmentation", "to_unit"]


def resize_to_tensor(images: np.ndarray, size: int, device: torch.device | str = "cpu", chunk: int = 2048) -> torch.Tensor:
    """(N, H, W, C) uint8 array -> (N, C, size, size) uint8 tensor on ``device`` (bilinear, antialiased)."""
    n, height, width, channels = images.shape
    out = torch.empty((n, channels, size, size), dtype=torch.uint8, device=device)
    for start in range(0, n, chunk):
        block = torch.from_numpy(np.array(images[start : start + chunk])).to(device)  # copy: mmaps are read-only
        block = block.permute(0, 3, 1, 2)
        if (height, width) != (size, size):
            block = F.interpolate(block.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            block = block.round_().clamp_(0, 255)
        out[start : start + chunk] = block.to(torch.uint8)
    return out


def to_unit(batch: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) uint8 with C in {1, 3} -> (B, 3, S, S) float in [0, 1] (grey replicated to 3 channels)."""
    x = batch.float().div_(255.0)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def standardise(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) float in [0, 1] -> ImageNet mean/std normalised."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) uint8 with C in {1, 3} -> (B, 3, S, S) float, ImageNet mean/std normalised."""
    return standardise(to_unit(batch))


class Fp32Augmentation(K.AugmentationSequential):
    """kornia's ``AugmentationSequential``, run with autocast disabled: under bf16 autocast its affine sampling
    grids (matmuls) would be rounded to 8 significant bits, up to 0.6 px at 160 px, and its colour jitter too.
    Outputs are float32 for float32 inputs, whatever the surrounding precision."""

    def forward(self, *args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        with full_precision(args[0]):
            return super().forward(*args, **kwargs)


class Fp32Sequential(nn.Sequential):
    """``nn.Sequential`` run with autocast disabled (as ``Fp32Augmentation``), for pipelines with a non-kornia
    module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with full_precision(x):
            return super().forward(x)


def supervised_augmentation() -> K.AugmentationSequential:
    """Source/oracle/SHOT training views on (B, 3, S, S) floats: flip + small affine, per-sample draws (fp32)."""
    return Fp32Augmentation(
        K.RandomHorizontalFlip(),
        K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.9, 1.1), p=1.0),
    )


def strong_augmentation() -> nn.Module:
    """The CluP authors' training views (their source and target training), batched, on [0, 1] (B, 3, S, S)
    floats: horizontal flip, random affine (35 deg, translate 0.15), colour jitter (brightness, contrast,
    saturation in [0.5, 1.5], hue +-0.5 turns). Jitter acts before normalisation in the authors' pipeline: apply
    it to ``to_unit(batch)``, then ``standardise``. Runs in fp32. The jitter is ``FastColorJitter`` (a YIQ hue
    rotation), not kornia's HSV ``ColorJitter``: the same factors at a quarter of the augmentation's cost
    (docs/PERFORMANCE.md, "The quick profile's speed")."""
    return Fp32Sequential(
        Fp32Augmentation(K.RandomHorizontalFlip(), K.RandomAffine(degrees=35.0, translate=(0.15, 0.15), p=1.0)),
        FastColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5, p=1.0),
    )


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None, drop_last: bool) -> Iterator[torch.Tensor]:
    """Index batches over ``range(n)``: shuffled by ``generator`` (None = in order)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Number of batches ``batch_indices`` yields."""
    return n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)

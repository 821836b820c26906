"""Multi-crop views made on the device, batched, with per-sample randomness (kornia).

The target split stays on the device as uint8 (N, C, S, S). A step takes a batch of indices, converts that
batch to float once, and makes every view of one size in a single kornia call on the batch repeated
``n_views`` times (kornia draws parameters per sample: ``same_on_batch=False``), so there is no per-image
Python in the loop. ``RandomResizedCrop`` uses ``cropping_mode="resample"`` (one batched warp); the default
"slice" mode loops over samples in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn

from benchmark.config.profiles import SSLRecipe
from methods.core.colour import FastColorJitter
from methods.core.data import standardise, to_unit

def crop_augmentation(size: int, scale: tuple[float, float], blur_probability: float) -> nn.Sequential:
    """SwAV's per-crop pipeline on (B, 3, H, W) floats in [0, 1] -> (B, 3, size, size) floats in [0, 1].

    RandomResizedCrop(scale), colour jitter (0.8, 0.8, 0.8, 0.2) with p 0.8, grayscale p 0.2, Gaussian blur
    (sigma 0.1-2, kernel about a tenth of the side, odd) with p ``blur_probability`` (0: no blur module, so no
    draws for it), horizontal flip p 0.5; every draw per sample.
    """
    kernel = max(3, (size // 10) | 1)
    blur = [K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=blur_probability)] if blur_probability > 0 else []
    return nn.Sequential(
        K.RandomResizedCrop((size, size), scale=scale, cropping_mode="resample"),
        FastColorJitter(0.8, 0.8, 0.8, 0.2, p=0.8),
        K.RandomGrayscale(p=0.2),
        *blur,
        K.RandomHorizontalFlip(p=0.5),
    )


@dataclass
class MultiCrop:
    """Makes ``large_crops`` views at ``large_size`` and ``small_crops`` views at the recipe's small size."""

    recipe: SSLRecipe
    large_size: int

    def __post_init__(self) -> None:
        self.large = crop_augmentation(self.large_size, self.recipe.large_scale, self.recipe.blur_probability)
        self.small = crop_augmentation(self.recipe.small_size, self.recipe.small_scale, self.recipe.blur_probability)

    @staticmethod
    def _views(augment: nn.Module, x: torch.Tensor, n_views: int) -> list[torch.Tensor]:
        if n_views == 0:
            return []
        views = standardise(augment(x.repeat(n_views, 1, 1, 1)))
        return list(views.chunk(n_views))

    def __call__(self, batch: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(B, C, S, S) uint8 -> (large views, small views), each a list of (B, 3, s, s) normalised floats."""
        x = to_unit(batch)
        return self._views(self.large, x, self.recipe.large_crops), self._views(self.small, x, self.recipe.small_crops)

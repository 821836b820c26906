"""Multi-crop views made on the device, batched, with per-sample randomness (kornia).

The target split stays on the device as uint8 (N, C, S, S). A step takes a batch of indices, converts that
batch to float once, and makes every view of one size in a single kornia call on the batch repeated
``n_views`` times (kornia draws parameters per sample: ``same_on_batch=False``), so there is no per-image
Python in the loop. ``RandomResizedCrop`` uses ``cropping_mode="resample"`` (one batched warp); the default
"slice" mode loops over samples in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn

from benchmark.config.profiles import SSLRecipe
from methods.core.data import standardise, to_unit

#: RGB -> YIQ (rows Y, I, Q) and back; a hue shift is a rotation of the (I, Q) plane.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INVERSE = torch.linalg.inv(_YIQ)
_LUMA = _YIQ[0]


class FastColorJitter(nn.Module):
    """Per-sample colour jitter of (B, 3, H, W) floats in [0, 1], applied with probability ``p`` per sample.

    Brightness, contrast and saturation factors ~ U[1 - s, 1 + s], then a hue shift ~ U[-hue, hue] turns,
    in that fixed order. Written here because kornia's ``ColorJitter`` converts every image to HSV and back
    for the hue: 0.84 s per 256 images of 64 px on 2 CPU cores, about 80% of a SwAV view's cost. Here the
    hue shift is a rotation of the YIQ chroma plane, so saturation + hue fold into one per-sample 3 x 3
    matrix (one batched matmul); brightness and contrast are per-sample scalars. Random draws come from
    torch's global stream, as kornia's do.
    """

    def __init__(self, brightness: float, contrast: float, saturation: float, hue: float, p: float) -> None:
        super().__init__()
        self.brightness, self.contrast, self.saturation, self.hue, self.p = brightness, contrast, saturation, hue, p

    def _factors(self, n: int, spread: float, device: torch.device) -> torch.Tensor:
        return 1.0 + spread * (2.0 * torch.rand(n, device=device) - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, device = x.shape[0], x.device
        apply = torch.rand(n, device=device) < self.p
        brightness = self._factors(n, self.brightness, device).view(n, 1, 1, 1)
        contrast = self._factors(n, self.contrast, device).view(n, 1, 1, 1)
        saturation = self._factors(n, self.saturation, device)
        angle = 2.0 * math.pi * self.hue * (2.0 * torch.rand(n, device=device) - 1.0)
        y = (x * brightness).clamp_(0.0, 1.0)
        grey_mean = torch.einsum("c,nchw->n", _LUMA.to(device), y).view(n, 1, 1, 1) / (y.shape[2] * y.shape[3])
        y = ((y - grey_mean) * contrast + grey_mean).clamp_(0.0, 1.0)
        cos, sin = angle.cos() * saturation, angle.sin() * saturation
        chroma = torch.zeros(n, 3, 3, device=device)
        chroma[:, 0, 0] = 1.0
        chroma[:, 1, 1], chroma[:, 1, 2], chroma[:, 2, 1], chroma[:, 2, 2] = cos, -sin, sin, cos
        matrix = _YIQ_INVERSE.to(device) @ chroma @ _YIQ.to(device)  # (n, 3, 3): RGB -> YIQ -> rotate chroma -> RGB
        y = torch.einsum("nij,njhw->nihw", matrix, y).clamp_(0.0, 1.0)
        return torch.where(apply.view(n, 1, 1, 1), y, x)


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

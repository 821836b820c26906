"""What each setting lets a method see, enforced by the types handed to ``Method.adapt``.

``UnlabelledImages`` has images and their indices and no label accessor at all: a source-free method
cannot read target labels through it. Source-free methods receive only that, never a source split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class UnlabelledImages:
    """The target train split as an adaptation method sees it: images and indices, no labels.

    Attributes:
        images: (N, C, S, S) uint8 on the run's device (C = 1 for grey datasets; see ``methods.core.data``).
        indices: (N,) int64, the dataset indices of ``images`` (stable across epochs, for memory banks).
    """

    __slots__ = ("images", "indices")

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.indices = torch.arange(len(images), device=images.device)

    def __len__(self) -> int:
        return len(self.images)

    def __getattr__(self, name: str):  # only reached for attributes that do not exist
        if "label" in name:
            raise PermissionError(
                f"UnlabelledImages has no {name!r}: target labels are never given to an adaptation method "
                "(source-free and UDA methods see the target train split without labels)"
            )
        raise AttributeError(name)


@dataclass(frozen=True)
class LabelledImages:
    """A labelled split: images (N, C, S, S) uint8 and labels (N,) int64, both on the run's device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class SourceFreeData:
    """Input of ``sfda`` methods: the unlabelled target train split and nothing else."""

    target: UnlabelledImages

    def __getattr__(self, name: str):  # only reached for attributes that do not exist
        if not name.startswith("__"):
            raise PermissionError(
                f"source-free methods receive only the unlabelled target train split (`data.target`); "
                f"`data.{name}` does not exist: no source images and no labels are given to them"
            )
        raise AttributeError(name)


@dataclass(frozen=True)
class UdaData:
    """Input of ``uda`` methods: the labelled source train split and the unlabelled target train split."""

    source: LabelledImages
    target: UnlabelledImages


@dataclass(frozen=True)
class OracleData:
    """Input of ``oracle`` methods: the labelled target train split (an upper bound, reported as oracle)."""

    target: LabelledImages

"""The interface every raw-release parser implements (RAF-DB, FER2013, ExpW, AFE).

A parser does two things: ``index`` reads the annotation files into per-split lists of ``RawSample``
(cheap; it fixes N so the cache can be pre-allocated), and ``decode`` turns one sample into an image
array of the dataset's cached size. Both raise ``DatasetError`` naming the file and line of bad input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class RawSample:
    """One annotated face of a raw release.

    Attributes:
        label: canonical class index (0..6, see ``datasets.labels``).
        source: the file the sample is read from (image path, or the CSV for FER2013).
        line: 1-based line of its annotation (None when the annotation is not line-based).
        ref: whatever ``decode`` needs beyond ``source`` (a crop box, a pixel string...).
        group: samples sharing a group must fall in the same split (ExpW: the photo's file name).
        key: the record's identity in the release, unique across all splits (RAF-DB: the image name; ExpW:
            ``image_name:face_id``; AFE: path and box); None where the release has no key (FER2013 rows).
    """

    label: int
    source: Path
    line: int | None = None
    ref: Any = None
    group: str | None = None
    key: str | None = None


class RawDataset(ABC):
    """A licensed FER release read from the user's disk.

    Class attributes:
        name: dataset key used on the CLI and in setups (``rafdb``, ``fer2013``, ``expw``, ``afe``).
        image_size: side length in pixels of the cached (square) images.
        channels: 1 for grey releases (replicated to 3 at load time, never in the cache), else 3.
        layout: a human description of the expected raw tree, quoted in "missing root" errors.
        version: recorded in the manifest as ``parser_version``; bump it whenever ``decode`` or ``index``
            gives other pixels, labels or splits for the same valid release, so that older caches are
            refused with the command that rebuilds them (``datasets.registry.ensure``).
    """

    name: ClassVar[str]
    image_size: ClassVar[int]
    channels: ClassVar[int]
    layout: ClassVar[str]
    version: ClassVar[int] = 1

    def __init__(self, split_seed: int = 0) -> None:
        self.split_seed = split_seed

    @abstractmethod
    def index(self, root: Path) -> dict[str, list[RawSample]]:
        """Read annotations under ``root`` into ``{"train": [...], "test": [...]}``; no image is decoded."""

    @abstractmethod
    def decode(self, root: Path, sample: RawSample) -> np.ndarray:
        """The sample's image as uint8 (image_size, image_size, channels)."""

    @abstractmethod
    def annotation_files(self, root: Path) -> list[Path]:
        """The annotation files whose hashes go into the manifest."""

    def manifest_extras(self, written: Mapping[str, Sequence[RawSample]]) -> dict[str, Any]:
        """Dataset-specific manifest fields (e.g. ExpW's split seed and test-index hash).

        Args:
            written: split -> the samples actually written to the cache, in cache order (without any
                sample skipped by ``--skip-bad``), so that the fields describe the cache, not the index.
        """
        return {}

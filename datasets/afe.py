"""AFE (Asian Facial Expression) as used by the CluP authors, or as distributed with the CD-FER benchmark.

Raw layouts (the first whose train list exists is used; both have lines `path left top right bottom emotion`,
space-separated, no header; the box is cropped, clamped to the image)::

    CluP:   <root>/annos/TrainTest/Train.csv, Test.csv;  images <root>/src/image/<path>
            emotion 6 Surprise, 2 Fear, 1 Disgust, 3 Happiness, 5 Sadness, 0 Anger, 4 Neutral
    CD-FER: <root>/AsianMovie_0725_0730/list/train_list.txt (train), val_list.txt (test);
            images <root>/AsianMovie_0725_0730/images/<path>
            emotion 3 Surprise, 6 Fear, 5 Disgust, 1 Happiness, 4 Sadness, 9 Anger, 0 Neutral

The CD-FER code silently skips codes outside its map (the release has 11 expression codes); here such a
line is a "code outside the label map" error like any other, skippable with ``--skip-bad``, which records
it in the manifest.

Crops are cached at 160 x 160 RGB (resized with BILINEAR), the size the CluP authors resized crops to, so
the ``paper`` profile (160 px) uses the cache as is and smaller profiles shrink it. An annotation path must
stay inside the raw root (no absolute path, no ``..`` climbing out of it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets._io import (
    AnnotatedRawDataset,
    BadRecords,
    ImageRef,
    Record,
    decode_image_sample,
    missing,
    read_whitespace_file,
    require_file,
)
from datasets.labels import code_map
from datasets.raw import RawSample

COLUMNS = ("path", "left", "top", "right", "bottom", "emotion")


@dataclass(frozen=True)
class AfeLayout:
    """One distribution of AFE.

    Attributes:
        variant: name recorded in the manifest.
        lists: split -> annotation file, relative to the root.
        images: image folder, relative to the root; annotation paths are relative to it.
        codes: emotion code -> canonical index.
    """

    variant: str
    lists: dict[str, Path]
    images: Path
    codes: dict[int, int]

    def describe(self) -> str:
        """The layout in words, for error messages."""
        lists = ", ".join(f"<root>/{path} ({split})" for split, path in self.lists.items())
        return f"{lists}, lines `path left top right bottom emotion`, images <root>/{self.images}/<path>"


CLUP = AfeLayout(
    variant="clup",
    lists={"train": Path("annos/TrainTest/Train.csv"), "test": Path("annos/TrainTest/Test.csv")},
    images=Path("src/image"),
    codes=code_map({6: 0, 2: 1, 1: 2, 3: 3, 5: 4, 0: 5, 4: 6}),
)
CDFER = AfeLayout(
    variant="cd-fer",
    lists={
        "train": Path("AsianMovie_0725_0730/list/train_list.txt"),
        "test": Path("AsianMovie_0725_0730/list/val_list.txt"),
    },
    images=Path("AsianMovie_0725_0730/images"),
    codes=code_map({3: 0, 6: 1, 5: 2, 1: 3, 4: 4, 9: 5, 0: 6}),
)
LAYOUTS = (CLUP, CDFER)


class Afe(AnnotatedRawDataset):
    """AFE: 54,901 face crops from Asian films, cached at 160 x 160 RGB (the CluP authors' size)."""

    name = "afe"
    image_size = 160
    channels = 3
    version = 2  # 1: cached at 112 px; 16-bit grey images clipped instead of scaled
    layout = " or ".join(f"[{layout.variant}] {layout.describe()}" for layout in LAYOUTS)

    def __init__(self, split_seed: int = 0) -> None:
        super().__init__(split_seed)
        self._variant: str | None = None

    def find_layout(self, root: Path) -> AfeLayout:
        """The layout whose train list exists under ``root``; a DatasetError quoting both when none does."""
        for layout in LAYOUTS:
            if (Path(root) / layout.lists["train"]).is_file():
                return layout
        raise missing(Path(root) / CLUP.lists["train"], Path(root), self.layout)

    def annotation_files(self, root: Path) -> list[Path]:
        layout = self.find_layout(root)
        return [require_file(root, path, layout.describe()) for path in layout.lists.values()]

    def read_index(self, root: Path, bad: BadRecords) -> dict[str, list[RawSample]]:
        layout = self.find_layout(root)
        self._variant = layout.variant
        files = dict(zip(layout.lists, self.annotation_files(root)))

        def parse(record: Record) -> RawSample:
            source, box = record.path_in("path", root, layout.images), record.box()
            return RawSample(
                label=record.label("emotion", layout.codes),
                source=source,
                line=record.line,
                ref=ImageRef(record.path, box),
                key=f"{source.relative_to(root).as_posix()} {' '.join(map(str, box))}",
            )

        return {split: read_whitespace_file(path, COLUMNS, parse, bad) for split, path in files.items()}

    def decode(self, root: Path, sample: RawSample) -> np.ndarray:
        """uint8 (160, 160, 3): the face box, clamped to the image, resized with BILINEAR."""
        return decode_image_sample(sample, self.image_size, self.channels)

    def manifest_extras(self, written: Mapping[str, Sequence[RawSample]]) -> dict[str, Any]:
        return {"variant": self._variant} if self._variant else {}

"""RAF-DB (basic): aligned 100 x 100 RGB faces, official train/test split by file-name prefix.

Raw layout::

    <root>/basic/EmoLabel/list_patition_label.txt    lines `train_00001.jpg 5` / `test_0001.jpg 3`
    <root>/basic/Image/aligned/train_00001_aligned.jpg

Labels 1..7 are Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral: canonical index = label - 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets._io import (
    BadRecords,
    ImageRef,
    Record,
    SingleAnnotationDataset,
    decode_image_sample,
    read_whitespace_file,
    split_by_name,
)
from datasets.labels import code_map
from datasets.raw import RawSample

ANNOTATION = Path("basic/EmoLabel/list_patition_label.txt")
IMAGES = Path("basic/Image/aligned")
COLUMNS = ("image_name", "label")
#: RAF-DB label (1..7) -> canonical index.
LABEL_MAP = code_map({code: code - 1 for code in range(1, 8)})
SPLIT_PREFIXES = {"train_": "train", "test_": "test"}


def aligned_name(name: str) -> str:
    """``train_00001.jpg`` -> ``train_00001_aligned.jpg`` (the aligned image of a listed face)."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}_aligned.{suffix}" if dot else f"{name}_aligned"


class RafDB(SingleAnnotationDataset):
    """RAF-DB basic: 12,271 train / 3,068 test aligned faces, cached at 100 x 100 RGB."""

    name = "rafdb"
    image_size = 100
    channels = 3
    annotation = ANNOTATION
    layout = f"<root>/{ANNOTATION} (lines `train_00001.jpg 5`) and <root>/{IMAGES}/train_00001_aligned.jpg"

    def read_index(self, root: Path, bad: BadRecords) -> dict[str, list[RawSample]]:
        (annotation,) = self.annotation_files(root)

        def parse(record: Record) -> tuple[str, RawSample]:
            name = record.text("image_name")
            split = next((s for prefix, s in SPLIT_PREFIXES.items() if name.startswith(prefix)), None)
            if split is None:
                raise record.error(f"image name {name!r} starts with neither `train_` nor `test_`")
            label = record.label("label", LABEL_MAP)
            listed = record.path_in("image_name", root, IMAGES)
            source = listed.with_name(aligned_name(listed.name))
            return split, RawSample(label=label, source=source, line=record.line, ref=ImageRef(annotation), key=name)

        return split_by_name(read_whitespace_file(annotation, COLUMNS, parse, bad))

    def decode(self, root: Path, sample: RawSample) -> np.ndarray:
        """uint8 (100, 100, 3); resized (BILINEAR) only if the aligned image is not 100 x 100."""
        return decode_image_sample(sample, self.image_size, self.channels)

"""ExpW (Expression in-the-Wild): faces cropped from web photos, with a seeded, grouped, stratified split.

Raw layout::

    <root>/label/label.lst       lines `image_name face_id top left right bottom confidence label`
    <root>/image/origin/<image_name>

The crop box is (left, top, right, bottom), clamped to the photo; its shorter side is resized to 160 (BILINEAR)
and the centre 160 x 160 RGB kept: the CluP authors' ``T.Resize(160)`` (their ``src/data/image.py``; a square box
comes out as a plain resize), at their input size, so the ``paper`` profile never upsamples a smaller cache.
Label 0..6 = angry, disgust, fear, happy, sad, surprise, neutral, mapped by ``FER2013_TO_CANONICAL``.

ExpW has no official split (the CluP authors drew an unseeded 20% with replacement). Ours, see
``grouped_stratified_split``: 80/20, every face of a photo in the same split, stratified by label, fully
determined by ``split_seed``; the manifest records the seed, the method and a SHA-256 of the test index
of the faces actually written (``--skip-bad`` leaves skipped faces out of both).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datasets._io import (
    BadRecords,
    ImageRef,
    Record,
    SingleAnnotationDataset,
    decode_image_sample,
    read_whitespace_file,
)
from datasets.labels import FER2013_TO_CANONICAL, code_map
from datasets.raw import RawSample

ANNOTATION = Path("label/label.lst")
IMAGES = Path("image/origin")
COLUMNS = ("image_name", "face_id", "top", "left", "right", "bottom", "confidence", "label")
#: ExpW label code -> canonical index.
LABEL_MAP = code_map(dict(enumerate(FER2013_TO_CANONICAL)))
TEST_FRACTION = 0.2
SPLIT_METHOD = (
    "grouped-stratified-v1: group = image file; stratum = the most frequent label of the group's faces "
    "(ties: lowest canonical index); per stratum, group names sorted then permuted by "
    "numpy.random.default_rng([seed, stratum]); the first floor(0.2 * n_groups + 0.5) groups -> test"
)


def grouped_stratified_split(
    groups: Sequence[str], labels: Sequence[int], seed: int, test_fraction: float = TEST_FRACTION
) -> np.ndarray:
    """Boolean test mask (N,): whole groups drawn per label stratum (see ``SPLIT_METHOD``).

    Deterministic for a seed and independent of the input order; every stratum with at least three
    groups contributes to the test split.
    """
    by_group: dict[str, Counter[int]] = defaultdict(Counter)
    for group, label in zip(groups, labels):
        by_group[group][label] += 1
    strata: dict[int, list[str]] = defaultdict(list)
    for group, counts in by_group.items():
        strata[min(counts, key=lambda label: (-counts[label], label))].append(group)
    test_groups: set[str] = set()
    for stratum, members in strata.items():
        members.sort()
        order = np.random.default_rng([seed, stratum]).permutation(len(members))
        n_test = int(np.floor(test_fraction * len(members) + 0.5))
        test_groups.update(members[i] for i in order[:n_test])
    return np.array([group in test_groups for group in groups], dtype=bool)


def index_sha256(keys: Sequence[str]) -> str:
    """SHA-256 of the sorted keys (``image_name:face_id``), one per line, UTF-8."""
    return hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()


class ExpW(SingleAnnotationDataset):
    """ExpW: 91,793 faces in the wild, cached at 160 x 160 RGB, split 80/20 by ``split_seed``."""

    name = "expw"
    image_size = 160
    channels = 3
    version = 3  # 1: cached at 112 px; 2: boxes squashed to 160 x 160
    annotation = ANNOTATION
    layout = (
        f"<root>/{ANNOTATION} (lines `image_name face_id top left right bottom confidence label`) and "
        f"<root>/{IMAGES}/<image_name>"
    )

    def read_index(self, root: Path, bad: BadRecords) -> dict[str, list[RawSample]]:
        (annotation,) = self.annotation_files(root)

        def parse(record: Record) -> RawSample:
            name = record.text("image_name")
            record.number("confidence")
            return RawSample(
                label=record.label("label", LABEL_MAP),
                source=record.path_in("image_name", root, IMAGES),
                line=record.line,
                ref=ImageRef(annotation, record.box()),
                group=name,
                key=f"{name}:{record.integer('face_id')}",
            )

        faces = read_whitespace_file(annotation, COLUMNS, parse, bad)
        test = grouped_stratified_split([s.group for s in faces], [s.label for s in faces], self.split_seed)
        return {
            "train": [s for s, t in zip(faces, test) if not t],
            "test": [s for s, t in zip(faces, test) if t],
        }

    def decode(self, root: Path, sample: RawSample) -> np.ndarray:
        """uint8 (160, 160, 3): the face box, clamped to the photo, shorter side resized to 160 (BILINEAR), centre
        crop."""
        return decode_image_sample(sample, self.image_size, self.channels, shorter_side=True)

    def manifest_extras(self, written: Mapping[str, Sequence[RawSample]]) -> dict[str, Any]:
        """The split's seed and method, and the hash and photo count of the test faces in ``written``."""
        test = written.get("test", [])
        return {
            "split_seed": self.split_seed,
            "split_method": SPLIT_METHOD,
            "test_fraction": TEST_FRACTION,
            "test_index_sha256": index_sha256([str(s.key) for s in test]),
            "test_index_format": "sorted `image_name:face_id` lines joined by \\n, UTF-8",
            "test_groups": len({s.group for s in test}),
        }

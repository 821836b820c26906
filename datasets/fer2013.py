"""FER2013: 48 x 48 grey faces stored as pixel strings in one CSV (Kaggle release or its ICML variant).

Raw layout (the first found is used)::

    <root>/fer2013.csv         header `emotion,pixels,Usage`
    <root>/icml_face_data.csv  header ` emotion, Usage, pixels` (header names and values are stripped)

``pixels`` holds 48 * 48 = 2304 space-separated grey values (0..255). Usage ``Training`` is the train
split (28,709); ``PublicTest`` and ``PrivateTest`` together are the test split (7,178), as the CluP
authors. Emotion 0..6 = angry, disgust, fear, happy, sad, surprise, neutral, mapped onto the canonical
order by ``FER2013_TO_CANONICAL``. Images are cached grey (1 channel); replication to 3 channels
happens at load time.

Every sample's ``source`` is the CSV, ``line`` its CSV line and ``ref`` its pixel string, so decoding
never re-reads the CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datasets._io import AnnotatedRawDataset, BadRecords, Record, missing, parse_records, split_by_name
from datasets.errors import DatasetError
from datasets.labels import FER2013_TO_CANONICAL, code_map
from datasets.raw import RawSample

#: Accepted CSV names, in order of preference.
CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")
COLUMNS = ("emotion", "pixels", "Usage")
SIDE = 48
#: FER2013 emotion code -> canonical index.
LABEL_MAP = code_map(dict(enumerate(FER2013_TO_CANONICAL)))
USAGE_SPLIT = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}


def csv_records(path: Path, required: tuple[str, ...]) -> Iterator[Record | DatasetError]:
    """Records of a CSV file whose header row names (at least) ``required``.

    Header names and values are stripped; spaces after commas (the ICML variant) are skipped before
    quote handling. A row with another field count, or unparsable CSV, comes as its DatasetError. A
    header lacking a required column raises at once (line 1).
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        try:
            header = [name.strip() for name in next(reader, [])]
        except csv.Error as exc:
            raise DatasetError(f"unreadable CSV header: {exc}", path, 1) from None
        absent = [name for name in required if name not in header]
        if absent:
            raise DatasetError(f"CSV header {header} lacks column(s) {absent}; expected {list(required)}", path, 1)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield DatasetError(f"unreadable CSV row: {exc}", path, reader.line_num)
                continue
            if not row:
                continue
            if len(row) != len(header):
                message = f"expected {len(header)} comma-separated fields {header}, got {len(row)}"
                yield DatasetError(message, path, reader.line_num)
                continue
            yield Record(path, reader.line_num, dict(zip(header, row)))


def decode_pixels(pixels: str, path: Path, line: int | None) -> np.ndarray:
    """A 2304-value pixel string -> uint8 (48, 48, 1); a DatasetError at ``path:line`` when malformed."""
    values = pixels.split()
    if len(values) != SIDE * SIDE:
        message = f"pixel string has {len(values)} values, expected {SIDE * SIDE} ({SIDE}x{SIDE})"
        raise DatasetError(message, path, line)
    try:
        array = np.array(values, dtype=np.int64)
    except ValueError:
        raise DatasetError("pixel string holds a value that is not an integer", path, line) from None
    if array.min() < 0 or array.max() > 255:
        raise DatasetError(f"pixel values must lie in 0..255, got {array.min()}..{array.max()}", path, line)
    return array.astype(np.uint8).reshape(SIDE, SIDE, 1)


class Fer2013(AnnotatedRawDataset):
    """FER2013: 28,709 train / 7,178 test grey faces, cached at 48 x 48 x 1."""

    name = "fer2013"
    image_size = SIDE
    channels = 1
    layout = (
        "<root>/fer2013.csv (header `emotion,pixels,Usage`) or <root>/icml_face_data.csv "
        "(header ` emotion, Usage, pixels`)"
    )

    def __init__(self, split_seed: int = 0) -> None:
        super().__init__(split_seed)
        self._csv_name: str | None = None

    def annotation_files(self, root: Path) -> list[Path]:
        root = Path(root)
        for name in CSV_NAMES:
            if (root / name).is_file():
                return [root / name]
        raise missing(root / CSV_NAMES[0], root, self.layout)

    def read_index(self, root: Path, bad: BadRecords) -> dict[str, list[RawSample]]:
        (path,) = self.annotation_files(root)
        self._csv_name = path.name

        def parse(record: Record) -> tuple[str, RawSample]:
            usage = record.text("Usage")
            if usage not in USAGE_SPLIT:
                raise record.error(f"Usage {usage!r} is none of {sorted(USAGE_SPLIT)}")
            label = record.label("emotion", LABEL_MAP)
            sample = RawSample(label=label, source=path, line=record.line, ref=record.text("pixels"))
            return USAGE_SPLIT[usage], sample

        return split_by_name(parse_records(csv_records(path, COLUMNS), parse, bad))

    def decode(self, root: Path, sample: RawSample) -> np.ndarray:
        """uint8 (48, 48, 1) from the sample's pixel string (no file is read)."""
        return decode_pixels(sample.ref, sample.source, sample.line)

    def manifest_extras(self) -> dict[str, Any]:
        return {"csv": self._csv_name} if self._csv_name else {}

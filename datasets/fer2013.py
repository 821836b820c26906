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
import re
from collections.abc import Iterator, Mapping, Sequence
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
#: A pixel string: ASCII digits separated by whitespace.
_PIXELS = re.compile(r"\s*[0-9]+(?:\s+[0-9]+)*\s*", re.ASCII)


def _short(text: str, width: int = 24) -> str:
    """``text`` cut to ``width`` characters (a header that is really a data row holds 2304 pixel values)."""
    return text if len(text) <= width else text[: width - 3] + "..."


def _csv_header(reader: Any, path: Path, required: tuple[str, ...]) -> list[str]:
    """The stripped column names of the first row; a DatasetError (line 1) unless each of ``required`` is
    named exactly once."""
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise DatasetError(f"unreadable CSV header: {exc}", path, 1) from None
    if not header:
        raise DatasetError(f"the CSV file is empty; expected a header naming {list(required)}", path)
    shown = [_short(name) for name in header[:8]] + (["..."] if len(header) > 8 else [])
    absent = [name for name in required if name not in header]
    if len(absent) == len(required):
        raise DatasetError(f"no CSV header: the first line {shown} names none of {list(required)}", path, 1)
    if absent:
        raise DatasetError(f"CSV header {shown} lacks column(s) {absent}; expected {list(required)}", path, 1)
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DatasetError(f"CSV header {shown} names column(s) {twice} more than once", path, 1)
    return header


def csv_records(path: Path, required: tuple[str, ...]) -> Iterator[Record | DatasetError]:
    """Records of a CSV file whose header row names (at least, and once each) ``required``.

    Header names and values are stripped; spaces after commas (the ICML variant) are skipped before
    quote handling. Every record is one line: a row with another field count, or unparsable CSV, comes as
    its DatasetError at the line the row starts. A bad header, a row running over several lines (an
    unterminated quote: the rows after it cannot be told apart) or a file without any row raises.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = _csv_header(reader, path, required)
        rows = 0
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if reader.line_num > start:  # e.g. "field larger than field limit" after an opened quote
                    raise DatasetError(f"unterminated quote: the row runs on to line {reader.line_num} ({exc})",
                                       path, start) from None
                yield DatasetError(f"unreadable CSV row: {exc}", path, start)
                continue
            if not row:
                continue
            rows += 1
            if reader.line_num > start:  # the rest of the file cannot be split into rows: not skippable
                raise DatasetError(f"unterminated quote: the row runs on to line {reader.line_num}", path, start)
            if len(row) != len(header):
                message = f"expected {len(header)} comma-separated fields {header}, got {len(row)}"
                yield DatasetError(message, path, start)
            else:
                yield Record(path, start, dict(zip(header, row)))
        if rows == 0:
            raise DatasetError("the CSV file has a header but no data row", path)


def decode_pixels(pixels: str, path: Path, line: int | None) -> np.ndarray:
    """A 2304-value pixel string -> uint8 (48, 48, 1); a DatasetError at ``path:line`` when malformed.

    Values must be ASCII digits (NumPy, like ``int``, would also read ``1_0`` or ``٣``).
    """
    values = pixels.split()
    if len(values) != SIDE * SIDE:
        message = f"pixel string has {len(values)} values, expected {SIDE * SIDE} ({SIDE}x{SIDE})"
        raise DatasetError(message, path, line)
    if _PIXELS.fullmatch(pixels) is None:
        raise DatasetError("pixel string holds a value that is not an integer in ASCII digits", path, line)
    array = np.array(values, dtype=np.int64)
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

    def manifest_extras(self, written: Mapping[str, Sequence[RawSample]]) -> dict[str, Any]:
        return {"csv": self._csv_name} if self._csv_name else {}

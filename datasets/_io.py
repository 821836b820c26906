"""Helpers shared by the raw-release parsers: annotation records, label codes, crop boxes and images.

Every problem is a ``DatasetError`` naming the annotation file and its 1-based line. Parsers hand bad
records to a ``BadRecords`` policy, which raises them (the default) or keeps them for the manifest
(``prepare --skip-bad``), so nothing is ever dropped silently.

Images are resized with PIL's BILINEAR filter (PIL widens the filter support when downsampling, so it
is antialiased), the same interpolation the harness uses when it resizes the cache at load time.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from PIL import Image

from datasets.errors import DatasetError
from datasets.raw import RawDataset, RawSample

T = TypeVar("T")

#: A crop box in pixels: (left, top, right, bottom), right and bottom exclusive (PIL's convention).
Box = tuple[int, int, int, int]

#: Interpolation of every resize of a raw image to the cached size.
RESAMPLE = Image.Resampling.BILINEAR

_PIL_MODES = {1: "L", 3: "RGB"}


class BadRecords:
    """What happens to a bad record: raise it (default) or, with ``skip``, keep it and go on.

    Attributes:
        skip: keep going past bad records instead of raising the first.
        errors: the kept errors, in the order met.
    """

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip
        self.errors: list[DatasetError] = []

    def __call__(self, error: DatasetError) -> None:
        if not self.skip:
            raise error
        self.errors.append(error)

    def records(self) -> list[dict[str, Any]]:
        """The kept errors as manifest records ``{"file", "line", "error"}`` (line None when unknown)."""
        return [
            {"file": None if e.path is None else str(e.path), "line": e.line, "error": e.message} for e in self.errors
        ]


class AnnotatedRawDataset(RawDataset):
    """A ``RawDataset`` whose ``index`` can pass bad annotation records to a ``BadRecords`` policy.

    ``index(root)`` keeps the base-class contract (the first bad record raises); ``prepare_raw`` calls
    ``index(root, bad=BadRecords(skip=True))`` to skip and report bad records instead.
    """

    def index(self, root: Path, bad: BadRecords | None = None) -> dict[str, list[RawSample]]:
        """Read annotations under ``root`` into ``{"train": [...], "test": [...]}``; no image is decoded."""
        return self.read_index(Path(root), bad if bad is not None else BadRecords())

    @abstractmethod
    def read_index(self, root: Path, bad: BadRecords) -> dict[str, list[RawSample]]:
        """``index`` with an explicit bad-record policy."""


class SingleAnnotationDataset(AnnotatedRawDataset):
    """An ``AnnotatedRawDataset`` described by one annotation file at ``annotation`` (relative to the root)."""

    annotation: ClassVar[Path]

    def annotation_files(self, root: Path) -> list[Path]:
        return [require_file(root, self.annotation, self.layout)]


@dataclass(frozen=True)
class ImageRef:
    """``RawSample.ref`` of an image-file sample: the annotation that names it and its crop box.

    Attributes:
        annotation: the annotation file whose line (``RawSample.line``) references the image.
        box: crop box in pixels (left, top, right, bottom), None for an already cropped face.
    """

    annotation: Path
    box: Box | None = None


@dataclass(frozen=True)
class Record:
    """One annotation record: named string fields, plus where it was read.

    Attributes:
        path: the annotation file.
        line: 1-based line number in ``path``.
        values: field name -> raw text.
    """

    path: Path
    line: int
    values: Mapping[str, str]

    def error(self, message: str) -> DatasetError:
        """A DatasetError located at this record."""
        return DatasetError(message, self.path, self.line)

    def text(self, column: str) -> str:
        """Field ``column`` as stripped text."""
        return self.values[column].strip()

    def _convert(self, column: str, kind: type, noun: str):  # type: ignore[no-untyped-def]
        value = self.text(column)
        try:
            return kind(value)
        except ValueError:
            raise self.error(f"field {column!r} must be {noun}, got {value!r}") from None

    def integer(self, column: str) -> int:
        """Field ``column`` as an int; a DatasetError when it is not an integer."""
        return self._convert(column, int, "an integer")

    def number(self, column: str) -> float:
        """Field ``column`` as a float; a DatasetError when it is not a number."""
        return self._convert(column, float, "a number")

    def label(self, column: str, mapping: Mapping[int, int]) -> int:
        """Field ``column`` as a label code mapped to a canonical index; a DatasetError outside ``mapping``."""
        code = self.integer(column)
        if code not in mapping:
            raise self.error(f"{column} code {code} is outside the label map (known codes {sorted(mapping)})")
        return mapping[code]

    def box(self, left: str = "left", top: str = "top", right: str = "right", bottom: str = "bottom") -> Box:
        """The crop box (left, top, right, bottom) in pixels; a DatasetError when it is empty."""
        box = (self.integer(left), self.integer(top), self.integer(right), self.integer(bottom))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise self.error(f"empty crop box (left, top, right, bottom) = {box}")
        return box


def missing(path: Path, root: Path, layout: str) -> DatasetError:
    """The error for a missing raw root or annotation file, quoting the expected ``layout``."""
    if not root.is_dir():
        return DatasetError(f"raw dataset root not found; expected layout: {layout}", root)
    return DatasetError(f"annotation file not found; expected layout: {layout}", path)


def require_file(root: Path, relative: str | Path, layout: str) -> Path:
    """``root / relative`` when it is a file; else the missing-root/annotation error quoting ``layout``."""
    path = Path(root) / relative
    if not path.is_file():
        raise missing(path, Path(root), layout)
    return path


def _lines(path: Path) -> Iterator[tuple[int, str | DatasetError]]:
    """(1-based line number, text) of a text file; an undecodable line comes as its DatasetError."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, DatasetError(f"line is not UTF-8 text ({exc.reason})", path, number)


def parse_records(rows: Iterable[Record | DatasetError], parse: Callable[[Record], T], bad: BadRecords) -> list[T]:
    """``parse`` every record, handing each DatasetError (from reading or parsing) to ``bad``."""
    out: list[T] = []
    for row in rows:
        try:
            if isinstance(row, DatasetError):
                raise row
            out.append(parse(row))
        except DatasetError as error:
            bad(error)
    return out


def whitespace_records(path: Path, columns: tuple[str, ...]) -> Iterator[Record | DatasetError]:
    """Records of a whitespace-separated, header-less annotation file with exactly ``columns`` fields.

    Blank lines are skipped; a line with another field count comes as its DatasetError.
    """
    for number, text in _lines(path):
        if isinstance(text, DatasetError):
            yield text
            continue
        fields = text.split()
        if not fields:
            continue
        if len(fields) != len(columns):
            yield DatasetError(
                f"expected {len(columns)} whitespace-separated fields ({' '.join(columns)}), got {len(fields)}",
                path,
                number,
            )
            continue
        yield Record(path, number, dict(zip(columns, fields)))


def read_whitespace_file(
    path: Path, columns: tuple[str, ...], parse: Callable[[Record], T], bad: BadRecords
) -> list[T]:
    """Parse every record of a whitespace-separated annotation file (see ``whitespace_records``)."""
    return parse_records(whitespace_records(path, columns), parse, bad)


def clamp_box(box: Box, width: int, height: int) -> Box:
    """``box`` clipped to a width x height image (may come out empty)."""
    left, top, right, bottom = box
    return max(left, 0), max(top, 0), min(right, width), min(bottom, height)


def load_image(
    path: Path, *, size: int, channels: int, annotation: Path, line: int | None, box: Box | None = None
) -> np.ndarray:
    """Open an image, crop ``box`` (clamped to the image), resize to size x size (BILINEAR).

    Args:
        path: the image file.
        size: side of the output in pixels.
        channels: 1 (grey, PIL mode L) or 3 (RGB; alpha dropped, palettes expanded).
        annotation, line: the annotation record naming the image, for error messages.
        box: crop box (left, top, right, bottom) in pixels, or None for the whole image.

    Returns:
        uint8 array (size, size, channels).

    Raises:
        DatasetError: at ``annotation:line``, naming ``path``, when the image is missing, unreadable or
        corrupt, or the clamped box is empty (the box lies outside the image).
    """
    if not path.is_file():
        raise DatasetError(f"image file not found: {path}", annotation, line)
    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert(_PIL_MODES[channels])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}", annotation, line) from None
    if box is not None:
        clamped = clamp_box(box, image.width, image.height)
        if clamped[2] <= clamped[0] or clamped[3] <= clamped[1]:
            raise DatasetError(
                f"crop box {box} lies outside the {image.width}x{image.height} image {path}", annotation, line
            )
        image = image.crop(clamped)
    if image.size != (size, size):
        image = image.resize((size, size), RESAMPLE)
    return np.asarray(image, dtype=np.uint8).reshape(size, size, channels)


def decode_image_sample(sample: RawSample, size: int, channels: int) -> np.ndarray:
    """Decode an image-file sample whose ``ref`` is an ``ImageRef``: uint8 (size, size, channels)."""
    ref: ImageRef = sample.ref
    return load_image(
        sample.source, size=size, channels=channels, annotation=ref.annotation, line=sample.line, box=ref.box
    )


def split_by_name(samples: Iterable[tuple[str, RawSample]]) -> dict[str, list[RawSample]]:
    """Group ``(split, sample)`` pairs into ``{"train": [...], "test": [...]}``, keeping their order."""
    out: dict[str, list[RawSample]] = {"train": [], "test": []}
    for split, sample in samples:
        out[split].append(sample)
    return out

"""Helpers shared by the raw-release parsers: annotation records, strict numbers and label codes, paths kept
inside the raw root, duplicate keys, crop boxes and images.

Every problem is a ``DatasetError`` naming the annotation file and its 1-based line. Parsers hand bad
records to a ``BadRecords`` policy, which raises them (the default) or keeps them for the manifest
(``prepare --skip-bad``), so nothing is ever dropped silently.

Images are decoded by ``datasets/images.py``.
"""

from __future__ import annotations

import posixpath
import re
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from datasets.errors import DatasetError
from datasets.images import Box, load_image
from datasets.labels import CLASS_NAMES
from datasets.raw import RawDataset, RawSample

T = TypeVar("T")

#: Integers and decimal numbers as the releases write them: ASCII digits only. ``int`` and ``float`` would
#: also take ``0_3``, ``٣``, `` 3``, ``nan`` or ``inf``, which no release writes: such a field is refused.
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
#: Copies listed in a duplicate-key message before it says "...".
_LISTED_COPIES = 4


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
        """Read annotations under ``root`` into ``{"train": [...], "test": [...]}``; no image is decoded.

        Records whose key repeats another's go to ``bad`` (``drop_duplicates``); a split left without a
        sample is a DatasetError, whatever the policy.
        """
        root, bad = Path(root), bad if bad is not None else BadRecords()
        splits = drop_duplicates(self.read_index(root, bad), bad)
        for split, samples in splits.items():
            if not samples:
                files = ", ".join(p.relative_to(root).as_posix() for p in self.annotation_files(root))
                skipped = f" ({len(bad.errors)} bad record(s) skipped)" if bad.errors else ""
                raise DatasetError(f"the {split} split is empty: no usable {split} record in {files}{skipped}", root)
        return splits

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

    def _matching(self, column: str, pattern: re.Pattern[str], noun: str) -> str:
        """Field ``column`` when it matches ``pattern`` in full; a DatasetError otherwise."""
        value = self.text(column)
        if pattern.fullmatch(value) is None:
            raise self.error(f"field {column!r} must be {noun}, got {value!r} (ASCII digits only)")
        return value

    def integer(self, column: str) -> int:
        """Field ``column`` as an int: ASCII digits with an optional leading minus, nothing else."""
        return int(self._matching(column, _INTEGER, "an integer"))

    def number(self, column: str) -> float:
        """Field ``column`` as a float: a plain ASCII decimal (``0.9``, ``-1``, ``1e-3``; no nan or inf)."""
        return float(self._matching(column, _NUMBER, "a number"))

    def path_in(self, column: str, root: Path, folder: Path) -> Path:
        """``root / folder / <field>``; a DatasetError when the field is absolute or climbs out of ``root``.

        Checked on the text (``..`` resolved lexically, symlinks not followed), so a raw root whose image
        folder is a symlink to another disk still works, while the annotation cannot name a file elsewhere.
        """
        name = self.text(column)
        joined = posixpath.normpath(posixpath.join(folder.as_posix(), name))
        if posixpath.isabs(name) or joined == ".." or joined.startswith("../"):
            raise self.error(f"{column} {name!r} points outside the raw root {root}")
        return Path(root) / joined

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

    Blank lines are skipped; a line with another field count comes as its DatasetError. A file without
    any non-blank line raises (it is not a bad record that could be skipped).
    """
    empty = True
    for number, text in _lines(path):
        if isinstance(text, DatasetError):
            empty = False
            yield text
            continue
        fields = text.split()
        if not fields:
            continue
        empty = False
        if len(fields) != len(columns):
            yield DatasetError(
                f"expected {len(columns)} whitespace-separated fields ({' '.join(columns)}), got {len(fields)}",
                path,
                number,
            )
            continue
        yield Record(path, number, dict(zip(columns, fields)))
    if empty:
        raise DatasetError("the annotation file holds no record (it is empty)", path)


def read_whitespace_file(
    path: Path, columns: tuple[str, ...], parse: Callable[[Record], T], bad: BadRecords
) -> list[T]:
    """Parse every record of a whitespace-separated annotation file (see ``whitespace_records``)."""
    return parse_records(whitespace_records(path, columns), parse, bad)


def decode_image_sample(sample: RawSample, size: int, channels: int, shorter_side: bool = False) -> np.ndarray:
    """Decode an image-file sample whose ``ref`` is an ``ImageRef``: uint8 (size, size, channels)
    (``shorter_side``: as ``load_image``)."""
    ref: ImageRef = sample.ref
    return load_image(
        sample.source, size=size, channels=channels, annotation=ref.annotation, line=sample.line, box=ref.box,
        shorter_side=shorter_side,
    )


def _annotation(sample: RawSample) -> Path:
    """The annotation file that lists ``sample`` (its ``source`` when the ref names none)."""
    return getattr(sample.ref, "annotation", sample.source)


def _duplicate_error(sample: RawSample, copies: list[RawSample]) -> DatasetError:
    """The error of ``sample``, one of several ``copies`` sharing its key; the others are named by line (and
    file, when they are in another annotation file)."""
    path = _annotation(sample)

    def where(copy: RawSample) -> str:
        return f"line {copy.line}" if _annotation(copy) == path else f"{_annotation(copy)}:{copy.line}"

    if len({c.label for c in copies}) == 1:
        return DatasetError(f"duplicate of {sample.key!r} first listed at {where(copies[0])}", path, sample.line)
    listed = ", ".join(f"{where(c)} ({CLASS_NAMES[c.label]})" for c in copies[:_LISTED_COPIES])
    more = ", ..." if len(copies) > _LISTED_COPIES else ""
    message = f"{sample.key!r} is listed {len(copies)} times with conflicting labels: {listed}{more}"
    return DatasetError(message, path, sample.line)


def drop_duplicates(splits: Mapping[str, list[RawSample]], bad: BadRecords) -> dict[str, list[RawSample]]:
    """``splits`` without samples whose ``key`` is shared, each one handed to ``bad`` as an error.

    Copies with one label: every copy after the first is bad (the first is kept). Copies with conflicting
    labels: every copy is bad, since nothing says which label is right. Keys are compared across splits,
    so a face listed in both train and test is caught too. Samples without a key are kept.
    """
    copies: dict[str, list[RawSample]] = defaultdict(list)
    for samples in splits.values():
        for sample in samples:
            if sample.key is not None:
                copies[sample.key].append(sample)
    out: dict[str, list[RawSample]] = {}
    for split, samples in splits.items():
        out[split] = []
        for sample in samples:
            group = copies.get(sample.key) if sample.key is not None else None
            if group is None or len(group) == 1 or (sample is group[0] and len({c.label for c in group}) == 1):
                out[split].append(sample)
            else:
                bad(_duplicate_error(sample, group))
    return out


def split_by_name(samples: Iterable[tuple[str, RawSample]]) -> dict[str, list[RawSample]]:
    """Group ``(split, sample)`` pairs into ``{"train": [...], "test": [...]}``, keeping their order."""
    out: dict[str, list[RawSample]] = {"train": [], "test": []}
    for split, sample in samples:
        out[split].append(sample)
    return out

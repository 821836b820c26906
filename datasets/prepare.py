"""Convert a raw release into the prepared cache (``python -m benchmark data prepare``).

``prepare_raw`` indexes the annotations, decodes every image into the split's uint8 memory map with a
progress bar, and writes the manifest. The write goes through ``CacheWriter``, so it is atomic: an
exception or Ctrl-C at any point leaves the previous complete cache or none, never a partial one.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from datasets._io import AnnotatedRawDataset, BadRecords
from datasets.cache import CacheWriter, file_sha256, read_manifest
from datasets.errors import DatasetError
from datasets.labels import CLASS_NAMES
from datasets.progress import progress_bar
from datasets.raw import RawDataset, RawSample

#: Rows copied at a time when compacting a split after skipped records.
_COPY_CHUNK = 1024


class EmptyClassWarning(UserWarning):
    """A split of a prepared dataset has no sample of some class."""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _decoded(dataset: RawDataset, root: Path, sample: RawSample) -> np.ndarray:
    """``dataset.decode`` checked against the cached shape (a parser bug otherwise, not bad input)."""
    image = dataset.decode(root, sample)
    expected = (dataset.image_size, dataset.image_size, dataset.channels)
    if image.shape != expected or image.dtype != np.uint8:
        raise ValueError(f"{dataset.name}.decode returned {image.dtype} {image.shape}, expected uint8 {expected}")
    return image


def _write_split(
    writer: CacheWriter,
    split: str,
    samples: list[RawSample],
    *,
    dataset: RawDataset,
    root: Path,
    bad: BadRecords,
    progress: Progress,
) -> list[RawSample]:
    """Decode ``samples`` into ``writer``'s ``split``; returns the samples actually written, in cache order.

    Without skipping, images go straight into the cache's memory map. With ``bad.skip`` they go to a
    scratch memory map first and only the good rows are copied over, as the final N is known only
    after decoding.
    """
    task = progress.add_task(f"{dataset.name} {split}", total=len(samples))
    decode = partial(_decoded, dataset, root)
    advance = partial(progress.advance, task)
    shape = (dataset.image_size, dataset.image_size, dataset.channels)
    if not bad.skip:
        return _write_all(writer, split, samples, shape, decode=decode, advance=advance)
    return _write_skipping_bad(writer, split, samples, shape, decode=decode, advance=advance, bad=bad)


def _write_all(
    writer: CacheWriter,
    split: str,
    samples: list[RawSample],
    shape: tuple[int, int, int],
    *,
    decode: Callable[[RawSample], np.ndarray],
    advance: Callable[[], None],
) -> list[RawSample]:
    """Decode every sample straight into the cache's ``split`` (the first bad record raises)."""
    images, labels = writer.create_split(split, len(samples), *shape)
    for i, sample in enumerate(samples):
        images[i] = decode(sample)
        labels[i] = sample.label
        advance()
    return samples


def _write_skipping_bad(
    writer: CacheWriter,
    split: str,
    samples: list[RawSample],
    shape: tuple[int, int, int],
    *,
    decode: Callable[[RawSample], np.ndarray],
    advance: Callable[[], None],
    bad: BadRecords,
) -> list[RawSample]:
    """Decode into a scratch memory map next to the cache, reporting bad records to ``bad``, then copy the good rows.

    A split whose every sample is bad is a DatasetError (an empty split is never written).
    """
    with tempfile.TemporaryDirectory(prefix=f".{writer.final_dir.name}.scratch-", dir=writer.final_dir.parent) as tmp:
        scratch = np.lib.format.open_memmap(Path(tmp) / "images.npy", mode="w+", dtype=np.uint8,
                                            shape=(len(samples), *shape))
        kept: list[RawSample] = []
        for sample in samples:
            try:
                scratch[len(kept)] = decode(sample)
            except DatasetError as error:
                bad(error)
            else:
                kept.append(sample)
            advance()
        if not kept:
            first = bad.errors[-len(samples)]
            message = (f"every {split} image is bad ({len(samples)} skipped), leaving the split empty; "
                       f"first: {first.message}")
            raise DatasetError(message, first.path, first.line)
        images, labels = writer.create_split(split, len(kept), *shape)
        for start in range(0, len(kept), _COPY_CHUNK):
            stop = min(start + _COPY_CHUNK, len(kept))
            images[start:stop] = scratch[start:stop]
        labels[:] = [sample.label for sample in kept]
        del scratch
    return kept


def _empty_classes(name: str, written: dict[str, list[RawSample]]) -> dict[str, list[str]]:
    """Class names without a sample, per split; one ``EmptyClassWarning`` per split that lacks any.

    The warning is the only channel (it used to be logged as well, so the CLI printed it twice).
    """
    empty: dict[str, list[str]] = {}
    for split, samples in written.items():
        present = {sample.label for sample in samples}
        empty[split] = [cls for index, cls in enumerate(CLASS_NAMES) if index not in present]
        if empty[split]:
            listed = ", ".join(repr(cls) for cls in empty[split])
            message = f"{name} {split} split has no sample of class {listed}"
            warnings.warn(message, EmptyClassWarning, stacklevel=3)
    return empty


def prepare_raw(dataset: RawDataset, root: Path, out_dir: Path, *, skip_bad: bool = False) -> dict[str, Any]:
    """Build the cache of ``dataset`` from the raw release at ``root`` into ``out_dir``, atomically.

    Args:
        dataset: the parser (its ``split_seed`` fixes any split it draws).
        root: the raw release's root folder.
        out_dir: the cache folder; replaced only once the new cache is complete.
        skip_bad: skip bad records (annotation lines and images) instead of raising the first, and list
            them in the manifest under ``skipped``.

    Returns:
        The manifest written: ``dataset``, ``parser_version``, ``image_size`` (px), ``channels``, ``annotation_sha256``
        (relative file name -> hash), ``skipped`` ({"count", "records": [{"file", "line", "error"}]}),
        ``empty_classes`` (split -> class names), the parser's ``manifest_extras()``, plus what
        ``CacheWriter`` adds (format, splits with sizes, class counts and array hashes).

    Raises:
        DatasetError: the first bad record (naming file and line) unless ``skip_bad``; a missing root or
            annotation file always.
    """
    root, out_dir = Path(root), Path(out_dir)
    bad = BadRecords(skip=skip_bad)
    splits = dataset.index(root, bad=bad) if isinstance(dataset, AnnotatedRawDataset) else dataset.index(root)
    hashes = {_relative(path, root): file_sha256(path) for path in dataset.annotation_files(root)}
    with CacheWriter(out_dir) as writer:
        with progress_bar() as progress:
            written = {
                split: _write_split(writer, split, samples, dataset=dataset, root=root, bad=bad, progress=progress)
                for split, samples in splits.items()
            }
        writer.manifest.update(
            dataset=dataset.name,
            parser_version=dataset.version,
            image_size=dataset.image_size,
            channels=dataset.channels,
            raw_root=str(root),
            annotation_sha256=hashes,
            code_version=version("fer-sfda-bench"),
            skip_bad=skip_bad,
            skipped={"count": len(bad.errors), "records": bad.records()},
            empty_classes=_empty_classes(dataset.name, written),
            **dataset.manifest_extras(written),
        )
    return read_manifest(out_dir)

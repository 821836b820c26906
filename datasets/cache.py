"""The prepared-data cache: memory-mappable uint8 image arrays, int64 labels and a JSON manifest.

Layout of one dataset's cache folder::

    <dir>/train_images.npy   uint8, (N, H, W, C), C = 1 (grey) or 3 (RGB)
    <dir>/train_labels.npy   int64, (N,), canonical class indices
    <dir>/test_images.npy, test_labels.npy
    <dir>/manifest.json      written last; its presence marks the cache complete

Writes are atomic: everything goes to a sibling temporary folder which is renamed onto ``<dir>`` only
after every array is flushed and the manifest is written. A crash at any point leaves either the
previous complete cache or no cache, never a half-written one that is later taken for complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.errors import DatasetError
from datasets.labels import CLASS_NAMES, NUM_CLASSES, class_counts

#: Bump when the on-disk layout changes; caches of another format are rebuilt or refused.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    """One prepared split.

    Attributes:
        images: uint8 array (N, H, W, C); a read-only memory map when loaded with ``mmap=True``.
        labels: int64 array (N,) of canonical class indices.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, streamed in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class CacheWriter:
    """Atomic writer of a cache folder; use as a context manager.

    >>> with CacheWriter(final_dir) as writer:                      # doctest: +SKIP
    ...     images, labels = writer.create_split("train", n=10, height=48, width=48, channels=1)
    ...     images[:] = ...; labels[:] = ...
    ...     writer.manifest.update(dataset="fer2013")

    On a clean exit the arrays are flushed, hashed, the manifest (with split sizes, class counts and
    hashes) is written, and the temporary folder replaces ``final_dir``. On an exception the temporary
    folder is deleted and ``final_dir`` is untouched.
    """

    def __init__(self, final_dir: str | Path) -> None:
        self.final_dir = Path(final_dir)
        self.manifest: dict[str, Any] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tmp: Path | None = None

    def __enter__(self) -> CacheWriter:
        self.final_dir.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.final_dir.name}.tmp-", dir=self.final_dir.parent))
        return self

    def create_split(
        self, split: str, n: int, height: int, width: int, channels: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Allocate the (N, H, W, C) uint8 image memmap and the (N,) int64 label array of ``split``."""
        if self._tmp is None:
            raise RuntimeError("CacheWriter.create_split called outside its `with` block")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        images = np.lib.format.open_memmap(
            self._tmp / f"{split}_images.npy", mode="w+", dtype=np.uint8, shape=(n, height, width, channels)
        )
        labels = np.zeros(n, dtype=np.int64)
        self._arrays[split] = (images, labels)
        return images, labels

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._tmp is not None
        try:
            if exc_type is not None:
                return
            self._finalise()
            if self.final_dir.exists():
                # Replace an older cache: move it aside first so the swap is two renames, never a mix.
                stale = self.final_dir.with_name(f".{self.final_dir.name}.stale-{os.getpid()}")
                os.replace(self.final_dir, stale)
                os.replace(self._tmp, self.final_dir)
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.replace(self._tmp, self.final_dir)
        finally:
            if self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)

    def _finalise(self) -> None:
        assert self._tmp is not None
        splits: dict[str, Any] = {}
        for split, (images, labels) in self._arrays.items():
            images.flush()
            if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
                raise ValueError(f"{split}: labels outside 0..{NUM_CLASSES - 1}")
            np.save(self._tmp / f"{split}_labels.npy", labels)
            del images  # close the memmap before hashing its file
            splits[split] = {
                "n": int(labels.shape[0]),
                "class_counts": class_counts(labels.tolist()),
                "images_sha256": file_sha256(self._tmp / f"{split}_images.npy"),
                "labels_sha256": file_sha256(self._tmp / f"{split}_labels.npy"),
            }
        self._arrays.clear()
        shapes = {s: list(np.load(self._tmp / f"{s}_images.npy", mmap_mode="r").shape[1:]) for s in splits}
        manifest = {"format": CACHE_FORMAT, "classes": list(CLASS_NAMES), "image_shape": shapes, **self.manifest}
        manifest["splits"] = splits
        text = json.dumps(manifest, indent=2, sort_keys=True)
        with open(self._tmp / MANIFEST, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def is_complete(cache_dir: str | Path) -> bool:
    """True when ``cache_dir`` holds a finished cache of the current format."""
    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == CACHE_FORMAT
    except json.JSONDecodeError:
        return False


def read_manifest(cache_dir: str | Path) -> dict[str, Any]:
    """The manifest of a complete cache; a DatasetError naming the folder when there is none."""
    cache_dir = Path(cache_dir)
    try:
        manifest = json.loads((cache_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise DatasetError("no complete prepared cache here (run `python -m benchmark data prepare`)", cache_dir)
    return manifest


def load_split(cache_dir: str | Path, split: str, mmap: bool = True) -> Split:
    """Load one split of a complete cache; images are a read-only memory map when ``mmap``."""
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    if split not in manifest["splits"]:
        raise DatasetError(f"split {split!r} not in cache (has {sorted(manifest['splits'])})", cache_dir)
    images = np.load(cache_dir / f"{split}_images.npy", mmap_mode="r" if mmap else None)
    labels = np.load(cache_dir / f"{split}_labels.npy")
    return Split(images=images, labels=labels)


def verify_cache(cache_dir: str | Path) -> dict[str, Any]:
    """Re-hash every array of a cache against its manifest.

    Returns:
        ``{"dataset", "splits": {split: {"n", "class_counts"}}}`` (the ``data verify --json`` shape).

    Raises:
        DatasetError: naming the first file whose hash, length or labels disagree with the manifest.
    """
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    report: dict[str, Any] = {"dataset": manifest.get("dataset"), "splits": {}}
    for split, info in manifest["splits"].items():
        for kind in ("images", "labels"):
            path = cache_dir / f"{split}_{kind}.npy"
            if not path.is_file():
                raise DatasetError("file listed in the manifest is missing", path)
            if file_sha256(path) != info[f"{kind}_sha256"]:
                raise DatasetError("content hash differs from the manifest: the cache is corrupt", path)
        labels = np.load(cache_dir / f"{split}_labels.npy")
        if len(labels) != info["n"] or class_counts(labels.tolist()) != info["class_counts"]:
            raise DatasetError("labels disagree with the manifest's counts", cache_dir / f"{split}_labels.npy")
        counts = {name: info["class_counts"][name] for name in CLASS_NAMES}  # canonical order, not JSON's sorted one
        report["splits"][split] = {"n": info["n"], "class_counts": counts}
    return report

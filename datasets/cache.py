"""The prepared-data cache: memory-mappable uint8 image arrays, int64 labels and a JSON manifest.

Layout of one dataset's cache folder::

    <dir>/train_images.npy   uint8, (N, H, W, C), C = 1 (grey) or 3 (RGB)
    <dir>/train_labels.npy   int64, (N,), canonical class indices
    <dir>/test_images.npy, test_labels.npy
    <dir>/val_images.npy, val_labels.npy   synthetic domains only (never reported; docs/DATA.md)
    <dir>/manifest.json      written last; its presence marks the cache complete

Writes are atomic: everything goes to a sibling temporary folder which is renamed onto ``<dir>`` only
after every array is flushed and the manifest is written. A crash at any point leaves either the
previous complete cache or no cache, never a half-written one that is later taken for complete. One
writer of a cache at a time (a lock file ``.<dir>.lock`` next to it); it first removes the temporary
folders a killed writer left behind.

Reads are checked: ``load_split`` compares each array's dtype and shape with the manifest on every call,
and its SHA-256 on the first use in a process (again whenever the file's size or modification time
changes), so a corrupt cache is an error naming the command that rebuilds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from datasets.errors import DatasetError
from datasets.labels import CLASS_NAMES, NUM_CLASSES, class_counts
from datasets.manifest import CACHE_FORMAT, MANIFEST, SPLITS, check_manifest, prepare_command
from datasets.permissions import staging_dir
from datasets.progress import log

__all__ = ["CACHE_FORMAT", "MANIFEST", "SPLITS", "CacheWriter", "Split", "file_sha256", "is_complete",
           "load_split", "read_manifest", "verify_cache"]

#: Name prefixes (after ``.<dir>.``) of the folders a writer makes next to ``<dir>``; a killed writer's are
#: removed by the next writer of the same cache.
LEFTOVER_PREFIXES = ("tmp-", "scratch-", "stale-")

#: SHA-256 of array files hashed in this process, by (path, device, inode, size, mtime in ns).
_HASHED: dict[tuple[str, int, int, int, int], str] = {}


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
        self._hashes: dict[str, str] = {}
        self._tmp: Path | None = None
        self._lock: IO[str] | None = None

    def __enter__(self) -> CacheWriter:
        self.final_dir.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.final_dir.with_name(f".{self.final_dir.name}.lock"))
        try:
            remove_leftovers(self.final_dir)
            self._tmp = staging_dir(self.final_dir)  # shareable like any folder the user makes
        except BaseException:
            self._lock.close()
            raise
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
        assert self._tmp is not None and self._lock is not None
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
            for name, digest in self._hashes.items():  # a rename keeps inode and mtime: no re-hash on first load
                _remember(self.final_dir / name, digest)
        finally:
            if self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._lock.close()

    def _finalise(self) -> None:
        assert self._tmp is not None
        splits: dict[str, Any] = {}
        for split, (images, labels) in self._arrays.items():
            images.flush()
            if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
                raise ValueError(f"{split}: labels outside 0..{NUM_CLASSES - 1}")
            np.save(self._tmp / f"{split}_labels.npy", labels)
            del images  # close the memmap before hashing its file
            for kind in ("images", "labels"):
                self._hashes[f"{split}_{kind}.npy"] = file_sha256(self._tmp / f"{split}_{kind}.npy")
            splits[split] = {
                "n": int(labels.shape[0]),
                "class_counts": class_counts(labels.tolist()),
                "images_sha256": self._hashes[f"{split}_images.npy"],
                "labels_sha256": self._hashes[f"{split}_labels.npy"],
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


def _lock(path: Path) -> IO[str]:
    """An open lock file holding an exclusive ``flock`` (released when closed, or when the process dies)."""
    handle = open(path, "a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process writing the same cache to finish (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle


def remove_leftovers(final_dir: Path) -> list[Path]:
    """Remove the temporary folders of ``final_dir`` that a killed writer left; returns them.

    Only safe while holding the cache's lock (``CacheWriter`` does): no other writer is then running.
    """
    found = [p for prefix in LEFTOVER_PREFIXES for p in final_dir.parent.glob(f".{final_dir.name}.{prefix}*")]
    for path in found:
        log(f"removing {path}, left by an interrupted `data prepare`")
        shutil.rmtree(path, ignore_errors=True)
    return found


def is_complete(cache_dir: str | Path) -> bool:
    """True when ``cache_dir`` holds a finished cache of the current format (its fields are not checked)."""
    path = Path(cache_dir) / MANIFEST
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == CACHE_FORMAT


def read_manifest(cache_dir: str | Path) -> dict[str, Any]:
    """The manifest of a complete cache, every field checked (``datasets.manifest.check_manifest``).

    Raises:
        DatasetError: one line naming the folder or ``manifest.json`` and the command that (re)builds the
            cache, when there is no manifest, it is not JSON, of another format, or malformed.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        command = prepare_command({}, cache_dir.name)
        raise DatasetError(f"no complete prepared cache here (run `{command}`)", cache_dir) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the manifest: {exc}", path) from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        command = prepare_command({}, cache_dir.name)
        raise DatasetError(f"manifest is not JSON ({exc.msg}); rebuild the cache with `{command}`", path,
                           exc.lineno) from None
    if isinstance(manifest, dict) and manifest.get("format") != CACHE_FORMAT:
        command = prepare_command(manifest, cache_dir.name)
        message = f"cache format {manifest.get('format')!r}, this version reads format {CACHE_FORMAT}"
        raise DatasetError(f"{message}; rebuild the cache with `{command}`", path)
    return check_manifest(manifest, path)


def _identity(path: Path) -> tuple[str, int, int, int, int]:
    """(absolute path, device, inode, size in bytes, mtime in ns): a file changed in place gets another."""
    stat = path.stat()
    return str(path.absolute()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _remember(path: Path, digest: str) -> None:
    _HASHED[_identity(path)] = digest


def _hash_once(path: Path) -> str:
    """``file_sha256(path)``, memoised in this process until the file's identity (size, mtime...) changes."""
    key = _identity(path)
    if key not in _HASHED:
        _HASHED[key] = file_sha256(path)
    return _HASHED[key]


def _load_array(path: Path, dtype: np.dtype, shape: tuple[int, ...], digest: str, fix: str, *, mmap: bool,
                rehash: bool) -> np.ndarray:
    """Load one array file and check it against the manifest: dtype and shape always, then the SHA-256.

    Args:
        path: the ``.npy`` file.
        dtype, shape: what the manifest implies (uint8 (N, H, W, C) images or int64 (N,) labels).
        digest: the manifest's SHA-256 of the file.
        fix: the command that rebuilds the cache, quoted in the error.
        mmap: return a read-only memory map instead of reading the file into memory.
        rehash: hash the file even if this process already hashed it unchanged (``data verify``).
    """

    def corrupt(why: str) -> DatasetError:
        return DatasetError(f"{why}: the cache is corrupt; rebuild it with `{fix}`", path)

    if not path.is_file():
        raise corrupt("file listed in the manifest is missing")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None)  # a short file fails here, a long one at the hash
    except (OSError, ValueError, EOFError) as exc:
        raise corrupt(f"not a readable .npy array ({exc})") from None
    if (array.dtype, array.shape, array.flags.c_contiguous) != (dtype, shape, True):
        raise corrupt(f"holds {array.dtype} {array.shape} where the manifest says {dtype} {shape}")
    found = file_sha256(path) if rehash else _hash_once(path)
    if rehash:
        _remember(path, found)
    if found != digest:
        raise corrupt("content hash differs from the manifest")
    return array


def _load_checked(cache_dir: Path, manifest: dict[str, Any], split: str, *, mmap: bool, rehash: bool) -> Split:
    """Both arrays of ``split``, each checked against the manifest (see ``_load_array``)."""
    info = manifest["splits"][split]
    fix = prepare_command(manifest, cache_dir.name)
    shape = (info["n"], *manifest["image_shape"][split])
    images = _load_array(cache_dir / f"{split}_images.npy", np.dtype(np.uint8), shape, info["images_sha256"], fix,
                         mmap=mmap, rehash=rehash)
    labels = _load_array(cache_dir / f"{split}_labels.npy", np.dtype(np.int64), (info["n"],), info["labels_sha256"],
                         fix, mmap=False, rehash=rehash)
    return Split(images=images, labels=labels)


def load_split(cache_dir: str | Path, split: str, mmap: bool = True) -> Split:
    """Load one split of a complete cache, checked against its manifest; images are a read-only memory map
    when ``mmap``.

    Every call checks the manifest's fields, and each array's dtype, shape and file identity (a stat); the
    first call for a file in this process, or after its size or modification time changed, also hashes it
    (SHA-256; about 1 s per GB, see docs/PERFORMANCE.md).

    Raises:
        DatasetError: the split is not in the cache, or a file disagrees with the manifest; the message gives
            the ``python -m benchmark data prepare`` command that rebuilds the cache.
    """
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    if split not in manifest["splits"]:
        raise DatasetError(f"split {split!r} not in cache (has {sorted(manifest['splits'])})", cache_dir)
    return _load_checked(cache_dir, manifest, split, mmap=mmap, rehash=False)


def verify_cache(cache_dir: str | Path, dataset: str | None = None) -> dict[str, Any]:
    """Re-hash every array of a cache and check it against every manifest field it relies on.

    Args:
        cache_dir: the cache folder.
        dataset: when given, the manifest must be of this dataset.

    Returns:
        ``{"dataset", "splits": {split: {"n", "class_counts"}}}`` (the ``data verify --json`` shape; class
        counts in the canonical order).

    Raises:
        DatasetError: one line naming the first file (or manifest field) that disagrees, and the command that
            rebuilds the cache; never another exception for a malformed manifest.
    """
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    fix = prepare_command(manifest, cache_dir.name)
    if dataset is not None and manifest["dataset"] != dataset:
        raise DatasetError(f"the manifest is of dataset {manifest['dataset']!r}, not {dataset!r}; rebuild the cache "
                           f"with `{prepare_command({}, dataset)}`", cache_dir / MANIFEST)
    report: dict[str, Any] = {"dataset": manifest["dataset"], "splits": {}}
    for split, info in manifest["splits"].items():
        labels = _load_checked(cache_dir, manifest, split, mmap=True, rehash=True).labels
        labels_path = cache_dir / f"{split}_labels.npy"
        if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise DatasetError(f"labels outside 0..{NUM_CLASSES - 1}; rebuild the cache with `{fix}`", labels_path)
        if class_counts(labels.tolist()) != info["class_counts"]:
            raise DatasetError(f"labels disagree with the manifest's class counts; rebuild the cache with `{fix}`",
                               labels_path)
        counts = {name: info["class_counts"][name] for name in CLASS_NAMES}  # canonical order, not JSON's sorted one
        report["splits"][split] = {"n": info["n"], "class_counts": counts}
    return report

"""The manifest of a prepared cache: every field the harness relies on, checked, and the command to rebuild it.

``check_manifest`` runs each time a manifest is read (``datasets.cache.read_manifest``), so that no reader
of a manifest (loading, ``data verify``, the source model's artifact key) ever meets a missing key or a
value of the wrong type: a malformed manifest is one ``DatasetError`` line naming ``manifest.json``, the
field, and the ``python -m benchmark data prepare`` command that rebuilds the cache.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from datasets.errors import DatasetError
from datasets.labels import CLASS_NAMES

#: Bump when the on-disk layout changes; caches of another format are rebuilt or refused.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
#: The splits a cache may hold. Every dataset has train and test; only the synthetic domains have ``val`` (fresh
#: identities for choosing protocol settings, never reported: docs/DATA.md, "The validation split").
SPLITS = ("train", "test", "val")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Characters of a value quoted in an error message.
_SHOWN = 60


def prepare_command(manifest: Mapping[str, Any], name: str) -> str:
    """The command that rebuilds the cache ``manifest`` describes, with the options it was prepared with.

    Args:
        manifest: the (possibly malformed) manifest; only well-formed fields are used.
        name: the dataset name to use when the manifest does not give one (the cache folder's name).
    """
    dataset = manifest.get("dataset")
    parts = ["python", "-m", "benchmark", "data", "prepare", dataset if _name(dataset) else name]
    if manifest.get("synthetic") is not True:
        raw, seed = manifest.get("raw_root"), manifest.get("split_seed")
        if _name(raw):
            parts += ["--raw", raw]
        if _count(seed) and seed != 0:
            parts += ["--split-seed", str(seed)]
        if manifest.get("skip_bad") is True:
            parts.append("--skip-bad")
    return " ".join(shlex.quote(part) for part in parts)


def check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """``manifest`` when it is well-formed; else a DatasetError at ``path`` naming the first bad field."""
    problem = next(_problems(manifest), None)
    if problem is None:
        return manifest
    fix = prepare_command(manifest if isinstance(manifest, dict) else {}, path.parent.name)
    raise DatasetError(f"malformed manifest: {problem}; rebuild the cache with `{fix}`", path)


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _count(value: Any, minimum: int = 0) -> bool:
    """A JSON integer (not a boolean) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _bad(field: str, wanted: str, value: Any) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= _SHOWN else shown[: _SHOWN - 3] + "..."
    return f"field {field!r} must be {wanted}, got {shown}"


def _problems(m: Any) -> Iterator[str]:
    """The manifest's problems, most basic first. Only the first is ever asked for, so the code after
    each ``yield`` may rely on that check having passed."""
    if not isinstance(m, dict):
        yield f"the top level must be a JSON object, got {type(m).__name__}"
    if not _name(m.get("dataset")):
        yield _bad("dataset", "a dataset name", m.get("dataset"))
    if m.get("classes") != list(CLASS_NAMES):
        yield _bad("classes", f"the canonical class list {list(CLASS_NAMES)}", m.get("classes"))
    size, channels = m.get("image_size"), m.get("channels")
    if not _count(size, 1):
        yield _bad("image_size", "a positive integer (pixels)", size)
    if not _count(channels) or channels not in (1, 3):
        yield _bad("channels", "1 or 3", channels)
    splits, shapes = m.get("splits"), m.get("image_shape")
    if not (isinstance(splits, dict) and splits and set(splits) <= set(SPLITS)):
        yield _bad("splits", f"an object keyed by split ({', '.join(SPLITS)})", splits)
    if not (isinstance(shapes, dict) and set(shapes) == set(splits)):
        yield _bad("image_shape", f"a shape for each split of 'splits' ({', '.join(splits)})", shapes)
    for split, entry in splits.items():
        if shapes[split] != [size, size, channels]:
            yield _bad(f"image_shape.{split}", f"[{size}, {size}, {channels}] (image_size, channels)", shapes[split])
        yield from _split_problems(f"splits.{split}", entry)
    if m.get("synthetic") is True:
        if not _name(m.get("generator")):
            yield _bad("generator", "the generator signature", m.get("generator"))
    else:
        yield from _raw_problems(m)


def _split_problems(field: str, entry: Any) -> Iterator[str]:
    """Problems of one ``splits`` entry: ``n``, ``class_counts`` (summing to n) and the two array hashes."""
    if not isinstance(entry, dict):
        yield _bad(field, "an object", entry)
    n, counts = entry.get("n"), entry.get("class_counts")
    if not _count(n):
        yield _bad(f"{field}.n", "a non-negative integer", n)
    if not (isinstance(counts, dict) and set(counts) == set(CLASS_NAMES) and all(map(_count, counts.values()))):
        yield _bad(f"{field}.class_counts", "a count for each class name", counts)
    if sum(counts.values()) != n:
        yield f"field {field + '.class_counts'!r} sums to {sum(counts.values())}, not n = {n}"
    for kind in ("images", "labels"):
        if not _sha256(entry.get(f"{kind}_sha256")):
            yield _bad(f"{field}.{kind}_sha256", "a SHA-256 (64 lower-case hex digits)", entry.get(f"{kind}_sha256"))


def _raw_problems(m: dict[str, Any]) -> Iterator[str]:
    """Problems of the fields only a raw release's manifest has (``datasets.prepare.prepare_raw``)."""
    if not _count(m.get("parser_version", 1), 1):
        yield _bad("parser_version", "a positive integer", m.get("parser_version"))
    if not isinstance(m.get("raw_root"), str):
        yield _bad("raw_root", "the raw release's folder", m.get("raw_root"))
    hashes = m.get("annotation_sha256")
    if not (isinstance(hashes, dict) and hashes and all(map(_sha256, hashes.values()))):
        yield _bad("annotation_sha256", "a SHA-256 per annotation file", hashes)
    skip_bad, skipped = m.get("skip_bad"), m.get("skipped")
    if not isinstance(skip_bad, bool):
        yield _bad("skip_bad", "true or false", skip_bad)
    if not (isinstance(skipped, dict) and _count(skipped.get("count")) and isinstance(skipped.get("records"), list)):
        yield _bad("skipped", 'an object {"count": n, "records": [...]}', skipped)
    records = skipped["records"]
    if skipped["count"] != len(records):
        yield f"field 'skipped.count' is {skipped['count']} but {len(records)} records are listed"
    if records and not skip_bad:
        yield "field 'skipped' lists records but 'skip_bad' is false"
    for i, record in enumerate(records):
        if not _skip_record(record):
            yield _bad(f"skipped.records[{i}]", '{"file": path or null, "line": n or null, "error": text}', record)
    zero = {split: [c for c in CLASS_NAMES if entry["class_counts"][c] == 0] for split, entry in m["splits"].items()}
    if m.get("empty_classes") != zero:
        yield _bad("empty_classes", f"the classes counted 0 per split, {zero}", m.get("empty_classes"))


def _skip_record(record: Any) -> bool:
    """A well-formed ``skipped.records`` entry."""
    return (
        isinstance(record, dict)
        and (record.get("file") is None or isinstance(record.get("file"), str))
        and (record.get("line") is None or _count(record.get("line"), 1))
        and isinstance(record.get("error"), str)
    )

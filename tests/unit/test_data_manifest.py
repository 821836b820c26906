"""Every manifest field the harness relies on is checked: a malformed manifest is one DatasetError line, never
a KeyError, AttributeError or TypeError; ``prepare_command`` names the options a cache was prepared with."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datasets.cache import CacheWriter, load_split, read_manifest, verify_cache
from datasets.errors import DatasetError
from datasets.manifest import check_manifest, prepare_command
from datasets.prepare import prepare_raw
from datasets.rafdb import RafDB
from tests import raw_fixtures as rf

#: Values put in place of each field in turn (None, wrong types, out of range).
ODD_VALUES: tuple[Any, ...] = (None, "x", -1, 0, 2.5, True, [], {}, [1, 2], {"a": 1})


@pytest.fixture(scope="module")
def raw_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared RAF-DB fixture (one bad record skipped, so ``skipped`` has an entry)."""
    base = tmp_path_factory.mktemp("manifest")
    rf.make_rafdb(base / "raw")
    rf.set_line(base / "raw" / "basic/EmoLabel/list_patition_label.txt", 22, "train_00099.jpg 9")
    prepare_raw(RafDB(), base / "raw", base / "rafdb", skip_bad=True)
    return base / "rafdb"


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with a synthetic domain's manifest fields (no raw-release fields)."""
    out = tmp_path_factory.mktemp("manifest") / "synth-lab"
    with CacheWriter(out) as writer:
        for split, n in (("train", 7), ("test", 7)):
            images, labels = writer.create_split(split, n, 8, 8, 3)
            images[:] = 1
            labels[:] = np.arange(7)
        writer.manifest.update(dataset="synth-lab", generator="synth-1:0123456789abcdef", image_size=8, channels=3,
                               synthetic=True)
    return out


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a JSON value (dict keys and list indices), outermost first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from paths(inner, (*prefix, index))


def mutations(manifest: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(description, mutated manifest): each field deleted, and replaced by each of ``ODD_VALUES``."""
    for path in paths(manifest):
        for value in ("<deleted>", *ODD_VALUES):
            mutated = copy.deepcopy(manifest)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if value == "<deleted>" and isinstance(parent, dict):
                del parent[path[-1]]
            elif value != "<deleted>":
                parent[path[-1]] = value
            else:
                continue
            yield f"{'.'.join(map(str, path))} = {value!r}", mutated


@pytest.mark.parametrize("which", ["raw_cache", "synthetic_cache"])
def test_no_malformed_manifest_crashes(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Every single-field mutation is either still well-formed or one DatasetError line; nothing else raises."""
    source: Path = request.getfixturevalue(which)
    manifest = read_manifest(source)
    cache = tmp_path / source.name
    cache.mkdir()
    for name in ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy"):
        (cache / name).symlink_to(source / name)
    refused = 0
    for description, mutated in mutations(manifest):
        (cache / "manifest.json").write_text(json.dumps(mutated))
        for use in (read_manifest, verify_cache, lambda c: load_split(c, "train")):
            try:
                use(cache)
            except DatasetError as error:
                assert "\n" not in str(error) and "rebuild" in str(error), (description, str(error))
                refused += 1
            except Exception as error:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{description}: {type(error).__name__}: {error}")
    assert refused > 100


@pytest.mark.parametrize("field, value, message", [
    ("dataset", "", "field 'dataset' must be a dataset name"),
    ("channels", 2, "field 'channels' must be 1 or 3, got 2"),
    ("classes", ["Fear"], "field 'classes' must be the canonical class list"),
    ("skip_bad", False, "field 'skipped' lists records but 'skip_bad' is false"),
    ("empty_classes", {"train": [], "test": ["Fear"]}, "field 'empty_classes' must be the classes counted 0"),
    ("parser_version", 0, "field 'parser_version' must be a positive integer, got 0"),
])
def test_field_messages(field: str, value: Any, message: str, raw_cache: Path) -> None:
    manifest = read_manifest(raw_cache) | {field: value}
    with pytest.raises(DatasetError, match=r"manifest\.json: malformed manifest: " + re.escape(message)):
        check_manifest(manifest, raw_cache / "manifest.json")


def test_counts_and_skipped_must_agree(raw_cache: Path) -> None:
    manifest = read_manifest(raw_cache)
    wrong_sum = copy.deepcopy(manifest)
    wrong_sum["splits"]["train"]["class_counts"]["Fear"] += 1
    with pytest.raises(DatasetError, match="field 'splits.train.class_counts' sums to 15, not n = 14"):
        check_manifest(wrong_sum, raw_cache / "manifest.json")
    wrong_count = copy.deepcopy(manifest)
    wrong_count["skipped"]["count"] = 3
    with pytest.raises(DatasetError, match="field 'skipped.count' is 3 but 1 records are listed"):
        check_manifest(wrong_count, raw_cache / "manifest.json")


def test_verify_names_the_expected_dataset(raw_cache: Path) -> None:
    assert verify_cache(raw_cache, dataset="rafdb")["dataset"] == "rafdb"
    with pytest.raises(DatasetError, match="the manifest is of dataset 'rafdb', not 'afe'"):
        verify_cache(raw_cache, dataset="afe")


def test_labels_sha256_per_split_in_the_manifest(raw_cache: Path) -> None:
    """``splits.<split>.labels_sha256`` is the SHA-256 of ``<split>_labels.npy`` (for artifact keys and records)."""
    for split in ("train", "test"):
        expected = hashlib.sha256((raw_cache / f"{split}_labels.npy").read_bytes()).hexdigest()
        assert read_manifest(raw_cache)["splits"][split]["labels_sha256"] == expected


def test_prepare_command() -> None:
    raw = {"dataset": "expw", "raw_root": "/data/my expw", "split_seed": 3, "skip_bad": True}
    assert prepare_command(raw, "ignored") == "python -m benchmark data prepare expw --raw '/data/my expw' " \
                                              "--split-seed 3 --skip-bad"
    assert prepare_command({"dataset": "afe", "raw_root": "/r", "split_seed": 0, "skip_bad": False}, "x") == \
        "python -m benchmark data prepare afe --raw /r"
    assert prepare_command({"dataset": "synth-lab", "synthetic": True, "raw_root": "/r"}, "x") == \
        "python -m benchmark data prepare synth-lab"
    assert prepare_command({"dataset": 3, "raw_root": ["x"], "split_seed": "1"}, "rafdb") == \
        "python -m benchmark data prepare rafdb"

"""The data layer's fault matrix, second half: a prepared cache that is wrong, and the cases that are not errors.

A cache row damages a prepared cache and expects of ``data verify`` and ``data show`` (which loads the split)
what ``test_data_faults.py`` expects of ``data prepare`` (exit status 2, one line naming the file), and a
``DatasetError`` from ``load_split``, each naming the command that rebuilds the cache. The cases that are not
errors follow: the leftovers of a killed prepare, ExpW's test index after ``--skip-bad``, and one warning per
split with an empty class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from datasets import afe, expw, registry
from datasets.cache import load_split, read_manifest
from datasets.errors import DatasetError
from tests import raw_fixtures as rf
from tests.integration.test_data_faults import AFE_IMAGES, AFE_TRAIN, location, one_line_error
from tests.integration.test_prepare_atomic import crash_after, leftovers


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


# --- the prepared cache ---------------------------------------------------------------------------------


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DELETE = object()


def edit_manifest(*keys: str, value: object = DELETE) -> Callable[[Path], None]:
    """Set the manifest field at ``keys`` to ``value`` (delete it by default; no keys: replace the whole)."""

    def damage(cache: Path) -> None:
        manifest = json.loads((cache / "manifest.json").read_text())
        if not keys:
            manifest = value
        else:
            parent = manifest
            for key in keys[:-1]:
                parent = parent[key]
            parent.pop(keys[-1]) if value is DELETE else parent.__setitem__(keys[-1], value)
        (cache / "manifest.json").write_text(json.dumps(manifest))

    return damage


#: (damage of the cache folder, file the error names (relative to the cache), line, texts the error holds).
CacheFault = tuple[Callable[[Path], None], str, "int | None", tuple[str, ...]]
CACHE_FAULTS: dict[str, CacheFault] = {
    "images-byte-flipped": (lambda c: flip_byte(c / "train_images.npy"), "train_images.npy", None,
                            ("content hash differs from the manifest: the cache is corrupt; rebuild it with "
                             "`python -m benchmark data prepare rafdb --raw {root}`",)),
    "images-truncated": (lambda c: os.truncate(c / "train_images.npy", 20_000), "train_images.npy", None,
                         ("not a readable .npy array",)),
    "images-extended": (lambda c: (c / "train_images.npy").open("ab").write(b"\0" * 100), "train_images.npy", None,
                        ("content hash differs from the manifest",)),
    "labels-missing": (lambda c: (c / "train_labels.npy").unlink(), "train_labels.npy", None,
                       ("file listed in the manifest is missing",)),
    "labels-not-npy": (lambda c: (c / "train_labels.npy").write_bytes(b"junk"), "train_labels.npy", None,
                       ("not a readable .npy array",)),
    "labels-of-another-length": (lambda c: np.save(c / "train_labels.npy", np.zeros(13, dtype=np.int64)),
                                 "train_labels.npy", None, ("holds int64 (13,) where the manifest says int64 (14,)",)),
    "manifest-not-json": (lambda c: (c / "manifest.json").write_text('{"format": 1,\n  oops'), "manifest.json", 2,
                          ("manifest is not JSON", "`python -m benchmark data prepare rafdb`")),
    "manifest-old-format": (edit_manifest("format", value=0), "manifest.json", None,
                            ("cache format 0, this version reads format 1; rebuild the cache with",)),
    "manifest-a-list": (edit_manifest(value=[1]), "manifest.json", None,
                        ("malformed manifest: the top level must be a JSON object, got list",)),
    "manifest-no-image-hash": (edit_manifest("splits", "train", "images_sha256"), "manifest.json", None,
                               ("field 'splits.train.images_sha256' must be a SHA-256",)),
    "manifest-n-as-text": (edit_manifest("splits", "test", "n", value="7"), "manifest.json", None,
                           ("field 'splits.test.n' must be a non-negative integer, got '7'",)),
    "manifest-dataset-a-number": (edit_manifest("dataset", value=3), "manifest.json", None,
                                  ("field 'dataset' must be a dataset name, got 3",)),
    "manifest-skipped-not-a-list": (edit_manifest("skipped", "records", value="none"), "manifest.json", None,
                                    ("field 'skipped' must be an object",)),
    "manifest-image-size-disagrees": (edit_manifest("image_size", value=160), "manifest.json", None,
                                      ("field 'image_shape.test' must be [160, 160, 3]",)),
}


@pytest.mark.parametrize("fault", list(CACHE_FAULTS.values()), ids=list(CACHE_FAULTS))
def test_cache_fault(fault: CacheFault, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damage, name, number, needs = fault
    root = tmp_path / "raw"
    rf.make_rafdb(root)
    cache = registry.prepare("rafdb", raw=root)
    damage(cache)
    for command in (["data", "verify", "rafdb"], ["data", "show", "rafdb", "--out", str(tmp_path / "grid.png")]):
        error = one_line_error(main(command), capsys)
        assert error.startswith(location(cache / name, number)), error
        for text in needs:
            assert text.format(root=root) in error, error
    with pytest.raises(DatasetError, match="rebuild"):
        load_split(cache, "train")
    assert not (tmp_path / "grid.png").exists()


def test_interrupted_prepare(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C mid-prepare: exit 130, one line, no cache and no temporary folder left."""
    rf.make_rafdb(tmp_path / "raw")
    crash_after(monkeypatch, 17, KeyboardInterrupt())
    assert main(["data", "prepare", "rafdb", "--raw", str(tmp_path / "raw"), "--skip-bad"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert not registry.cache_dir("rafdb").exists() and leftovers(registry.cache_dir("rafdb")) == []


def test_load_hashes_once_per_process_and_again_after_a_change(tmp_path: Path) -> None:
    """The full hash runs on first use of a file (keyed by path, inode, size and mtime), not on every load."""
    import datasets.cache as cache_module

    rf.make_rafdb(tmp_path / "raw")
    cache = registry.prepare("rafdb", raw=tmp_path / "raw")
    images = cache / "train_images.npy"
    stat = images.stat()
    flip_byte(images)
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: looks unchanged
    assert len(load_split(cache, "train")) == 14  # remembered from the write: not re-hashed
    cache_module._HASHED.clear()  # a new process
    with pytest.raises(DatasetError, match="content hash differs"):
        load_split(cache, "train")


# --- not errors -----------------------------------------------------------------------------------------


def test_killed_prepare_leaves_nothing_after_the_next(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Temporary folders of a killed prepare are removed by the next prepare of that dataset, and only those."""
    rf.make_rafdb(tmp_path / "raw")
    parent = registry.cache_dir("rafdb").parent
    left = [parent / ".rafdb.tmp-abc123", parent / ".rafdb.scratch-x1", parent / ".rafdb.stale-4242"]
    other = parent / ".afe.tmp-keep"
    for folder in [*left, other]:
        folder.mkdir(parents=True)
        (folder / "train_images.npy").write_bytes(b"partial")
    assert main(["data", "prepare", "rafdb", "--raw", str(tmp_path / "raw")]) == 0
    assert not any(folder.exists() for folder in left) and other.exists()


def test_expw_skip_bad_test_index_describes_the_cache(tmp_path: Path) -> None:
    """With --skip-bad, ExpW's test-index hash and photo count cover the faces written, not the ones skipped."""
    rf.make_expw(tmp_path)
    index = expw.ExpW().index(tmp_path)
    dropped = index["test"][0].source
    dropped.write_bytes(b"junk")
    out = registry.prepare("expw", raw=tmp_path, skip_bad=True)
    manifest = read_manifest(out)
    kept = [s for s in index["test"] if s.source != dropped]
    assert manifest["skipped"]["count"] == len(index["test"]) - len(kept) >= 1
    assert manifest["splits"]["test"]["n"] == len(kept)
    assert manifest["test_index_sha256"] == expw.index_sha256([str(s.key) for s in kept])
    assert manifest["test_index_sha256"] != expw.index_sha256([str(s.key) for s in index["test"]])
    assert manifest["test_groups"] == len({s.group for s in kept}) == len({s.group for s in index["test"]}) - 1


def test_dotdot_inside_the_root_is_accepted(tmp_path: Path) -> None:
    """A `..` that stays inside the raw root is a path like any other (only leaving the root is refused)."""
    rf.make_afe(tmp_path)
    rf.set_line(tmp_path / AFE_TRAIN, 1, "../image/film_0/train_0000.png 20 16 100 104 3")
    sample = afe.Afe().index(tmp_path)["train"][0]
    assert sample.source == tmp_path / AFE_IMAGES / "film_0/train_0000.png"


def test_empty_class_warning_printed_once_per_split(tmp_path: Path) -> None:
    """The CLI prints each split's missing classes once (the warning used to be logged as well)."""
    rf.make_rafdb(tmp_path / "raw", classes=(0, 1, 2, 3, 4))  # no Anger, no Neutral
    env = {**os.environ, "FERBENCH_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "benchmark", "data", "prepare", "rafdb", "--raw", str(tmp_path / "raw")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2], timeout=120)
    assert done.returncode == 0, done.stderr
    for split in ("train", "test"):
        assert done.stderr.count(f"rafdb {split} split has no sample of class 'Anger', 'Neutral'") == 1, done.stderr
    assert done.stderr.count("has no sample") == 2, done.stderr

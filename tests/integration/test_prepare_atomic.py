"""A crash mid-prepare leaves no cache taken for complete; ``skip_bad`` skips bad records and lists them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets import rafdb, registry
from datasets.cache import is_complete, load_split, read_manifest, verify_cache
from datasets.errors import DatasetError
from datasets.prepare import prepare_raw
from datasets.rafdb import RafDB
from tests import raw_fixtures as rf


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


def crash_after(monkeypatch: pytest.MonkeyPatch, n_ok: int, exc: BaseException) -> None:
    """Make ``RafDB.decode`` succeed ``n_ok`` times, then raise ``exc``."""
    original = RafDB.decode
    calls = {"n": 0}

    def decode(self: RafDB, root: Path, sample):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise exc
        return original(self, root, sample)

    monkeypatch.setattr(RafDB, "decode", decode)


def leftovers(out: Path) -> list[str]:
    """Temporary or scratch folders of ``out`` left in its parent (the writers' lock file stays, by design)."""
    if not out.parent.exists():
        return []
    lock = f".{out.name}.lock"
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != lock)


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
@pytest.mark.parametrize("skip_bad", [False, True], ids=["strict", "skip-bad"])
def test_crash_leaves_no_complete_cache(exc: BaseException, skip_bad: bool, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rf.make_rafdb(tmp_path / "raw")
    crash_after(monkeypatch, 17, exc)  # all 14 train images, then 3 of the test split
    out = registry.cache_dir("rafdb")
    with pytest.raises(type(exc)):
        registry.prepare("rafdb", raw=tmp_path / "raw", skip_bad=skip_bad)
    assert not is_complete(out)
    assert not out.exists()
    assert leftovers(out) == []
    # a later ensure/load does not take it for complete (no raw root at the default place either)
    with pytest.raises(DatasetError, match="is not prepared"):
        registry.ensure("rafdb")
    with pytest.raises(DatasetError, match="is not prepared"):
        registry.load("rafdb", "train")


def test_crash_keeps_previous_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rf.make_rafdb(tmp_path / "raw")
    out = registry.prepare("rafdb", raw=tmp_path / "raw")
    before = read_manifest(out)
    rf.make_rafdb(tmp_path / "raw2", n_train=21, seed=1)
    crash_after(monkeypatch, 5, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        registry.prepare("rafdb", raw=tmp_path / "raw2")
    assert is_complete(out) and read_manifest(out) == before
    assert verify_cache(out)["splits"]["train"]["n"] == 14
    assert leftovers(out) == []
    assert registry.ensure("rafdb") == out


#: Run in a child process: prepare RAF-DB with --skip-bad and SIGKILL itself at the 18th image (in the test split).
KILLED_PREPARE = """
import os, signal, sys
from pathlib import Path
from datasets import registry
from datasets.rafdb import RafDB

original, calls = RafDB.decode, [0]

def decode(self, root, sample):
    calls[0] += 1
    if calls[0] > 17:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, root, sample)

RafDB.decode = decode
registry.prepare("rafdb", raw=Path(sys.argv[1]), skip_bad=True)
"""


def test_killed_prepare_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup: the temporary and scratch folders stay until the next prepare removes them."""
    rf.make_rafdb(tmp_path / "raw")
    out = registry.cache_dir("rafdb")
    killed = subprocess.run([sys.executable, "-c", KILLED_PREPARE, str(tmp_path / "raw")], capture_output=True,
                            text=True, env=dict(os.environ), cwd=Path(__file__).parents[2], timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()
    assert [name.split("-")[0] for name in leftovers(out)] == [".rafdb.scratch", ".rafdb.tmp"]
    registry.prepare("rafdb", raw=tmp_path / "raw")  # the killed writer's lock went with it: no wait
    assert leftovers(out) == [] and verify_cache(out)["splits"]["test"]["n"] == 7


def test_skip_bad_records_in_manifest(tmp_path: Path) -> None:
    expected = rf.make_rafdb(tmp_path, n_test=14)
    ann = tmp_path / rafdb.ANNOTATION
    lines = ann.read_text().splitlines()
    lines[1] = "train_00002.jpg 9"  # line 2: label code outside the map (index time)
    lines.append("train_00099")  # line 29: malformed (index time)
    ann.write_text("\n".join(lines) + "\n")
    (tmp_path / rafdb.IMAGES / "train_00005_aligned.jpg").unlink()  # line 5: missing image (decode time)
    (tmp_path / rafdb.IMAGES / "test_0003_aligned.jpg").write_bytes(b"junk")  # line 17: corrupt (decode time)

    with pytest.raises(DatasetError, match=re.escape(f"{ann}:2: ")):
        registry.prepare("rafdb", raw=tmp_path)
    out = registry.prepare("rafdb", raw=tmp_path, skip_bad=True)

    manifest = read_manifest(out)
    skipped = manifest["skipped"]
    assert skipped["count"] == 4 and manifest["skip_bad"] is True
    assert [(r["file"], r["line"]) for r in skipped["records"]] == [(str(ann), n) for n in (2, 29, 5, 17)]
    errors = [r["error"] for r in skipped["records"]]
    assert "outside the label map" in errors[0] and "expected 2 whitespace-separated fields" in errors[1]
    assert "image file not found" in errors[2] and "cannot read image" in errors[3]

    verify_cache(out)
    train, test = load_split(out, "train"), load_split(out, "test")
    kept_train = [label for i, label in enumerate(expected["train"]) if i not in (1, 4)]
    kept_test = [label for i, label in enumerate(expected["test"]) if i != 2]
    assert train.labels.tolist() == kept_train and test.labels.tolist() == kept_test
    assert train.images.shape == (12, 100, 100, 3) and test.images.shape == (13, 100, 100, 3)
    rf.assert_face_colours(np.asarray(train.images), train.labels)
    rf.assert_face_colours(np.asarray(test.images), test.labels)
    assert manifest["empty_classes"] == {"train": [], "test": []}
    assert leftovers(out) == []


def test_prepare_raw_returns_manifest(tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path / "raw")
    manifest = prepare_raw(RafDB(), tmp_path / "raw", tmp_path / "cache")
    assert manifest == read_manifest(tmp_path / "cache")
    assert manifest["splits"]["train"]["n"] == 14 and manifest["code_version"]

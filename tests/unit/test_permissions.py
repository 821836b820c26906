"""What the project writes under FERBENCH_HOME gets the user's umask, not tempfile's private modes
(datasets/permissions.py): a cache shared on a cluster is readable by the group that shares it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from benchmark.services.artifacts import get_or_build
from datasets import registry
from datasets.permissions import current_umask
from methods.core.checkpoints import save_checkpoint
from tests import raw_fixtures as rf


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _modes(folder: Path) -> tuple[set[int], set[int]]:
    """The modes of ``folder`` and the folders below it, and of the files below it."""
    paths = [folder, *folder.rglob("*")]
    return ({stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()},
            {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()})


def test_current_umask_reads_the_process_umask(umask):
    assert current_umask() == umask


def test_checkpoint_file_follows_the_umask(tmp_path, umask):
    save_checkpoint(tmp_path / "model.pt", {"w": torch.zeros(2)})
    assert stat.S_IMODE((tmp_path / "model.pt").stat().st_mode) == 0o666 & ~umask


def test_artifact_folder_and_files_follow_the_umask(tmp_path, monkeypatch, umask):
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))

    def build(out: Path) -> None:
        save_checkpoint(out / "model.pt", {"w": torch.zeros(2)})
        (out / "info.json").write_text("{}")

    folder, built = get_or_build("source", {"umask": umask}, build)
    assert built
    assert _modes(folder) == ({0o777 & ~umask}, {0o666 & ~umask})


def test_prepared_cache_follows_the_umask(tmp_path, monkeypatch):
    umask = 0o002  # a cache shared by a group (the other masks are the same code, checked above on artifacts)
    old = os.umask(umask)
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))
    rf.make_rafdb(tmp_path / "raw")
    try:
        cache = registry.prepare("rafdb", raw=tmp_path / "raw")
    finally:
        os.umask(old)
    assert _modes(cache) == ({0o777 & ~umask}, {0o666 & ~umask})

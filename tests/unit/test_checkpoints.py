"""Checkpoints never unpickle arbitrary objects; weights round-trip."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from benchmark.config.errors import CheckpointError
from methods.core.checkpoints import load_checkpoint, load_state_dict, save_checkpoint
from methods.core.models import build_backbone


class _Payload:
    """Unpickling this would run a shell command (writes a marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_with_a_clear_message(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load: the file needs arbitrary unpickling"):
        load_checkpoint(path)
    assert not marker.exists(), "the payload ran"


def test_plain_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckpointError, match="plain.pkl"):
        load_state_dict(path)
    assert not marker.exists()


def test_missing_and_garbage_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)


def test_state_dict_round_trip_and_local_weights(tmp_path):
    net, dim = build_backbone("resnet18", "small", 8)
    path = tmp_path / "weights.pt"
    save_checkpoint(path, {"state_dict": net.state_dict(), "meta": {"stem": "small"}})
    again, _ = build_backbone("resnet18", "small", 8, weights=path)
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    with pytest.raises(CheckpointError, match="does not match"):
        build_backbone("resnet18", "small", 16, weights=path)

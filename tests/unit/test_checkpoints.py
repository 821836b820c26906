"""Checkpoints never unpickle arbitrary objects; weights round-trip."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch

from benchmark.config.errors import CheckpointError
from methods.core.checkpoints import InertObject, load_checkpoint, load_state_dict, save_checkpoint
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
    with pytest.raises(CheckpointError, match=r"garbage\.pt: not a PyTorch checkpoint \(not a zip/pickle file\)"):
        load_checkpoint(garbage)


@pytest.mark.parametrize("lightning", [False, True])
def test_empty_random_and_truncated_files_say_what_is_wrong(tmp_path, lightning):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt: not a PyTorch checkpoint \(empty file\)$"):
        load_checkpoint(empty, lightning=lightning)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(7, 256)) * 4)  # fixed "random" bytes: neither a zip nor a pickle
    with pytest.raises(CheckpointError, match=r"noise\.pt: not a PyTorch checkpoint \(not a zip/pickle file\)$"):
        load_checkpoint(noise, lightning=lightning)

    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    for cut in (2, 40, len(data) // 2, len(data) - 10):
        truncated = tmp_path / f"cut{cut}.pt"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=rf"cut{cut}\.pt: not a (readable )?PyTorch checkpoint"):
            load_checkpoint(truncated, lightning=lightning)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.randn(64)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:60])
    with pytest.raises(CheckpointError, match=r"legacy\.pt: not a readable PyTorch checkpoint \(truncated file\)"):
        load_checkpoint(legacy, lightning=lightning)


class _Hidden:
    """A payload reached through an allow-listed hyper-parameter type: still needs ``os.system`` to be named."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _open_payload(marker):
    class _Open:
        def __reduce__(self):
            return (open, (marker, "w"))
    return _Open()


def _getattr_payload(marker):
    class _Getattr:  # tries to reach Namespace.__init__ (and from there anything) through getattr
        def __reduce__(self):
            return (getattr, (argparse.Namespace, "__init__"))
    return _Getattr()


def _exec_payload(marker):
    class _Exec:
        def __reduce__(self):
            return (exec, (f"open({marker!r}, 'w').close()",))
    return _Exec()


@pytest.mark.parametrize("make", [lambda m: _Payload(m), _open_payload, _getattr_payload, _exec_payload],
                         ids=["os.system", "open", "getattr", "exec"])
@pytest.mark.parametrize("protocol", ["zip", "legacy"])
def test_lightning_mode_refuses_payloads_hidden_in_hyper_parameters(tmp_path, make, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "lightning.ckpt"
    payload = {"state_dict": {"backbone.w": torch.zeros(2)}, "epoch": 3,
               "hyper_parameters": {"cfg": argparse.Namespace(method="swav", hook=make(str(marker)))}}
    torch.save(payload, path, _use_new_zipfile_serialization=protocol == "zip")
    with pytest.raises(CheckpointError, match=r"lightning\.ckpt: refused to load: .*torch said: .*GLOBAL"):
        load_checkpoint(path, lightning=True)
    assert not marker.exists(), "the payload ran"


def test_lightning_mode_loads_hyper_parameters_as_inert_records(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(argparse.Namespace, "__init__", lambda self, **kw: calls.append(kw))
    monkeypatch.setattr(argparse.Namespace, "__setstate__", lambda self, state: calls.append(state), raising=False)
    cfg = argparse.Namespace.__new__(argparse.Namespace)
    cfg.__dict__.update(method="swav", backbone=argparse.Namespace.__new__(argparse.Namespace), lr=0.6)
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"backbone.w": torch.arange(4.0)}, "hyper_parameters": {"cfg": cfg}}, path)
    safe_before = set(torch.serialization.get_safe_globals())
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)  # the default stays strict
    payload = load_checkpoint(path, lightning=True)
    assert torch.equal(payload["state_dict"]["backbone.w"], torch.arange(4.0))
    record = payload["hyper_parameters"]["cfg"]
    assert isinstance(record, InertObject) and not isinstance(record, argparse.Namespace)
    assert record.qualname == "argparse.Namespace"
    assert record.state["method"] == "swav" and record.state["lr"] == 0.6
    assert isinstance(record.state["backbone"], InertObject)
    assert calls == [], "the real Namespace was constructed"
    assert set(torch.serialization.get_safe_globals()) == safe_before, "the allow-list leaked out of the load"


def test_state_dict_round_trip_and_local_weights(tmp_path):
    net, dim = build_backbone("resnet18", "small", 8)
    path = tmp_path / "weights.pt"
    save_checkpoint(path, {"state_dict": net.state_dict(), "meta": {"stem": "small"}})
    again, _ = build_backbone("resnet18", "small", 8, weights=path)
    for key, value in net.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    with pytest.raises(CheckpointError, match="does not match"):
        build_backbone("resnet18", "small", 16, weights=path)

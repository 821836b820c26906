"""Artifacts are built once, atomically; a crashed build leaves nothing taken for complete. What is loaded is
checked first (recorded sizes and SHA-256, hashed once per process; then the load itself), and a damaged
artifact is moved aside and rebuilt once, also by racing workers.

``DAMAGES`` (one way each to damage an artifact folder) is shared with ``tests/integration/test_artifact_faults.py``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.config.errors import CheckpointError
from benchmark.services import artifacts
from benchmark.services.artifacts import (
    FILES,
    KEY_FILE,
    artifact_dir,
    describe_artifact,
    file_record,
    get_or_build,
    hash_once,
    is_built,
    load_model,
    save_model,
)
from methods.core.checkpoints import load_state_dict, save_checkpoint

# --- damages (shared with the integration fault matrix) --------------------------------------------------------

#: A damage done to an artifact folder whose weights file is named by the second argument.
Damage = Callable[[Path, str], None]


def flip_bytes(folder: Path, weights: str) -> None:
    """Invert 16 bytes in the middle of the weights file (tensor data: it still loads, with wrong values)."""
    path = folder / weights
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


def truncate(folder: Path, weights: str) -> None:
    """Keep the first half of the weights file."""
    path = folder / weights
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_shape(folder: Path, weights: str) -> None:
    """Save, in place of the weights, a state dict whose first non-scalar tensor has another shape, and record
    the new file's size and hash in ``key.json``: only loading it into the module can tell."""
    state = load_state_dict(folder / weights)
    name = next(k for k, v in state.items() if v.dim() > 0)
    state[name] = torch.zeros([s + 1 for s in state[name].shape], dtype=state[name].dtype)
    save_checkpoint(folder / weights, {"state_dict": state})
    record = json.loads((folder / KEY_FILE).read_text())
    record[FILES][weights] = file_record(folder)[weights]
    (folder / KEY_FILE).write_text(json.dumps(record))


def _delete(name: str | None) -> Damage:
    return lambda folder, weights: (folder / (name or weights)).unlink()


def _write(name: str, text: str) -> Damage:
    return lambda folder, weights: (folder / name).write_text(text)


def _edit_key(edit: Callable[[dict], None]) -> Damage:
    def damage(folder: Path, weights: str) -> None:
        record = json.loads((folder / KEY_FILE).read_text())
        edit(record)
        (folder / KEY_FILE).write_text(json.dumps(record))
    return damage


DAMAGES: dict[str, Damage] = {
    "flipped bytes in the weights": flip_bytes,
    "truncated weights": truncate,
    "deleted weights": _delete(None),
    "deleted info.json": _delete("info.json"),
    "garbage info.json": _write("info.json", "{not json"),
    "wrong-shape state dict, hash updated": wrong_shape,
    "deleted key.json": _delete(KEY_FILE),
    "garbage key.json": _write(KEY_FILE, "\x00\x01garbage"),
    "key.json of another key": _edit_key(lambda record: record.update(seed=99)),
    "malformed file record": _edit_key(lambda record: record.update({FILES: {"model.pt": 3}})),
}

# --- a tiny model artifact ---------------------------------------------------------------------------------------

KEY = {"dataset": "demo", "seed": 0}


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def build_linear(out: Path, calls: list[Path] | None = None, log_file: str | None = None, delay: float = 0.0) -> None:
    """A builder: the seeded ``nn.Linear(3, 2)`` saved with ``save_model``; notes each call in ``calls`` or as a
    line of ``log_file`` (for other processes), after ``delay`` seconds."""
    if calls is not None:
        calls.append(out)
    if log_file is not None:
        with open(log_file, "a") as handle:
            handle.write(f"{os.getpid()}\n")
    time.sleep(delay)
    save_model(out, "model.pt", _linear(), KEY, {"note": "demo"})


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """The artifact module's log lines."""
    lines: list[str] = []
    monkeypatch.setattr(artifacts, "log", lines.append)
    return lines


def _corrupt_folders(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def assert_set_aside_once(path: Path, kind: str, warnings: list[str]) -> None:
    """The artifact folder ``path`` of ``kind`` was moved aside once, said in one one-line warning."""
    aside = _corrupt_folders(path)
    assert len(aside) == 1 and len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"warning: artifact {kind}/{path.name} is unusable (")
    assert warnings[0].endswith(f"moved to {aside[0].name}, rebuilding it")


# --- building once, atomically ----------------------------------------------------------------------------------

def test_built_once_then_reused(home):
    calls = []

    def build(out):
        calls.append(out)
        (out / "model.txt").write_text("weights")

    first, built = get_or_build("demo", {"a": 1}, build)
    again, built_again = get_or_build("demo", {"a": 1}, build)
    assert built and not built_again and first == again and len(calls) == 1
    assert (first / "model.txt").read_text() == "weights"
    other, _ = get_or_build("demo", {"a": 2}, build)
    assert other != first and len(calls) == 2


def test_crash_during_build_leaves_no_complete_artifact(home):
    def crash(out):
        (out / "half.bin").write_bytes(b"\0" * 10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        get_or_build("demo", {"a": 1}, crash)
    final = artifact_dir("demo", {"a": 1})
    assert not is_built(final) and not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []
    path, built = get_or_build("demo", {"a": 1}, lambda out: (out / "ok").write_text("1"))
    assert built and is_built(path)


def test_an_artifact_is_described_by_its_key(home):
    path, _ = get_or_build("ssl", {"ssl": "swav", "dataset": "synth-wild", "seed": 2, "epochs": 16}, lambda out: None)
    assert describe_artifact(path.name) == "ssl swav synth-wild seed 2"
    source, _ = get_or_build("source", {"dataset": "synth-lab", "seed": 0}, lambda out: None)
    assert describe_artifact(source.name) == "source synth-lab seed 0"
    assert describe_artifact("0123456789abcdef") == "not in this FERBENCH_HOME"
    (source / KEY_FILE).write_text("garbage")
    assert describe_artifact(source.name) == "not in this FERBENCH_HOME"


# --- the hash record and first-use verification -----------------------------------------------------------------

def test_key_json_records_the_size_and_sha256_of_every_other_file(home):
    path, _ = get_or_build("source", KEY, build_linear)
    record = json.loads((path / KEY_FILE).read_text())
    assert {k: v for k, v in record.items() if k != FILES} == {"kind": "source", **KEY}
    assert set(record[FILES]) == {"model.pt", "info.json"}
    for name, entry in record[FILES].items():
        data = (path / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_file_is_hashed_once_per_process_until_it_changes(tmp_path, monkeypatch):
    hashed: list[Path] = []
    real = artifacts.file_sha256
    monkeypatch.setattr(artifacts, "file_sha256", lambda p: hashed.append(p) or real(p))
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 100)
    first = hash_once(path)
    assert hash_once(path) == first == hashlib.sha256(b"a" * 100).hexdigest() and len(hashed) == 1
    data = b"b" * 100  # same size: only the times tell; set mtime back to make sure ctime counts too
    stat = path.stat()
    time.sleep(0.05)  # past the file system clock's tick (a few ms)
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hash_once(path) == hashlib.sha256(data).hexdigest() and len(hashed) == 2
    path.write_bytes(b"c" * 101)  # other size
    assert hash_once(path) == hashlib.sha256(b"c" * 101).hexdigest() and len(hashed) == 3
    replacement = tmp_path / "new.bin"  # another inode at the same path
    replacement.write_bytes(b"d" * 101)
    os.replace(replacement, path)
    assert hash_once(path) == hashlib.sha256(b"d" * 101).hexdigest() and len(hashed) == 4
    assert hash_once(path) and len(hashed) == 4


def test_reuse_hashes_each_file_on_first_use_only(home, monkeypatch):
    path, _ = get_or_build("source", KEY, build_linear)
    hashed: list[str] = []
    real = artifacts.file_sha256
    monkeypatch.setattr(artifacts, "file_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    for _ in range(3):
        assert get_or_build("source", KEY, build_linear) == (path, False)
    assert sorted(hashed) == ["info.json", "model.pt"]  # the first reuse hashed them, the next two only stat


# --- damaged artifacts are rebuilt ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_artifact_is_set_aside_and_rebuilt(home, warnings, damage):
    calls: list[Path] = []
    build = partial(build_linear, calls=calls)
    path, _ = get_or_build("source", KEY, build)
    clean = load_model(path, "model.pt", _linear(), False)
    damage(path, "model.pt")
    module = nn.Linear(3, 2)
    again, built = get_or_build("source", KEY, build)
    info = load_model(again, "model.pt", module, built)
    assert again == path and info == {**clean, "built_now": True} and len(calls) == 2
    assert all(torch.equal(v, _linear().state_dict()[k]) for k, v in module.state_dict().items())
    assert_set_aside_once(path, "source", warnings)
    assert get_or_build("source", KEY, build) == (path, False) and len(calls) == 2  # intact now


def test_an_artifact_without_recorded_hashes_is_adopted_then_checked(home, warnings):
    calls: list[Path] = []
    build = partial(build_linear, calls=calls)
    path, _ = get_or_build("source", KEY, build)
    record = json.loads((path / KEY_FILE).read_text())
    (path / KEY_FILE).write_text(json.dumps({k: v for k, v in record.items() if k != FILES}))  # as written before
    assert get_or_build("source", KEY, build) == (path, False) and len(calls) == 1
    assert json.loads((path / KEY_FILE).read_text()) == record and "predates recorded hashes" in warnings[0]
    flip_bytes(path, "model.pt")
    assert get_or_build("source", KEY, build) == (path, True) and len(calls) == 2


def test_an_adopted_artifact_that_does_not_load_is_rebuilt(home, warnings):
    calls: list[Path] = []
    build = partial(build_linear, calls=calls)
    path, _ = get_or_build("source", KEY, build)
    wrong_shape(path, "model.pt")
    record = json.loads((path / KEY_FILE).read_text())
    (path / KEY_FILE).write_text(json.dumps({k: v for k, v in record.items() if k != FILES}))
    again, built = get_or_build("source", KEY, build)
    assert not built and len(calls) == 1
    assert load_model(again, "model.pt", nn.Linear(3, 2), built)["built_now"] and len(calls) == 2


def test_load_without_a_builder_says_what_to_do(tmp_path):
    folder = tmp_path / "artifact"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="unusable .*model.pt.*delete it to have it rebuilt"):
        load_model(folder, "model.pt", nn.Linear(3, 2), False)


# --- racing workers rebuild once --------------------------------------------------------------------------------

class _WaitingLinear(nn.Linear):
    """``nn.Linear(3, 2)`` whose first ``load_state_dict`` waits for every racer to get there."""

    def __init__(self, barrier) -> None:
        super().__init__(3, 2)
        self.barrier: object = barrier

    def load_state_dict(self, *args, **kwargs):
        if self.barrier is not None:
            self.barrier.wait(60)
            self.barrier = None
        return super().load_state_dict(*args, **kwargs)


def _racer(home: str, log_file: str, barrier, results) -> None:
    os.environ["FERBENCH_HOME"] = home
    os.environ["FERBENCH_QUIET"] = "1"
    build = partial(build_linear, log_file=log_file, delay=1.0)
    path, built = get_or_build("source", KEY, build)
    module = _WaitingLinear(barrier)
    info = load_model(path, "model.pt", module, built)
    results.put((info["built_now"], torch.equal(module.weight, _linear().weight)))


@pytest.mark.parametrize("damage", ["flipped bytes in the weights", "wrong-shape state dict, hash updated"])
def test_racing_workers_rebuild_a_damaged_artifact_once(home, tmp_path, damage):
    path, _ = get_or_build("source", KEY, build_linear)
    DAMAGES[damage](path, "model.pt")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    log_file = tmp_path / "builds.txt"
    racers = [context.Process(target=_racer, args=(str(home), str(log_file), barrier, results)) for _ in range(2)]
    for racer in racers:
        racer.start()
    outcomes = sorted(results.get(timeout=120) for _ in racers)
    for racer in racers:
        racer.join(30)
        assert racer.exitcode == 0
    assert len(log_file.read_text().splitlines()) == 1  # one build
    assert outcomes == [(False, True), (True, True)]  # the other worker loaded what the first rebuilt
    assert len(_corrupt_folders(path)) == 1

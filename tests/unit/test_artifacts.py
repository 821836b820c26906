"""Artifacts are built once, atomically; a crashed build leaves nothing taken for complete."""

from __future__ import annotations

import pytest

from benchmark.services.artifacts import artifact_dir, describe_artifact, get_or_build, is_built


def test_built_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))
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


def test_crash_during_build_leaves_no_complete_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))

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


def test_an_artifact_is_described_by_its_key(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))
    path, _ = get_or_build("ssl", {"ssl": "swav", "dataset": "synth-wild", "seed": 2, "epochs": 16}, lambda out: None)
    assert describe_artifact(path.name) == "ssl swav synth-wild seed 2"
    source, _ = get_or_build("source", {"dataset": "synth-lab", "seed": 0}, lambda out: None)
    assert describe_artifact(source.name) == "source synth-lab seed 0"
    assert describe_artifact("0123456789abcdef") == "not in this FERBENCH_HOME"

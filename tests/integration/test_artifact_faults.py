"""The artifact fault matrix: a damaged source model or SSL backbone in ``$FERBENCH_HOME/artifacts`` is never
used. The next ``run_method`` sets it aside with one warning and trains it again (its record's
``artifacts.built_now`` says so), and, the rebuild being deterministic, gets the accuracy of a clean run with the
same seed; the storage holds that one completed trial and nothing else.

Synthetic setup, ``tiny`` profile (SSL: 1 epoch at batch 256). The clean artifacts are built once per module in
a home of their own; each row copies them into a fresh home (sharing the session's synthetic caches) and damages
one file. The damages are ``tests/unit/test_artifacts.py``'s, where every row also runs on a tiny model.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch

from benchmark.config.profiles import PROFILES
from benchmark.orchestration.run import run_method
from benchmark.services import artifacts
from benchmark.store.storage import completed_records, open_storage
from datasets import registry
from methods.core.checkpoints import load_state_dict
from tests.conftest import tiny_variant
from tests.unit.test_artifacts import DAMAGES, assert_set_aside_once

pytestmark = pytest.mark.slow  # a source model or SSL backbone trained per row: minutes in all on 2 CPU cores

# Through whole runs: one damage of each way it is caught (hash, missing file, load). Every kind of damage
# (truncated weights, info.json deleted or garbage, ...) runs on a small model in tests/unit/test_artifacts.py.
SOURCE_FAULTS = ("flipped bytes in the weights", "deleted weights", "wrong-shape state dict, hash updated")
SSL_FAULTS = ("flipped bytes in the weights",)


@dataclass(frozen=True)
class Row:
    """A run that uses an artifact: the method and its overrides, the artifact's kind (``artifacts/<kind>/``),
    weights file and field of the record's ``artifacts``."""

    method: str
    overrides: dict[str, str]
    kind: str
    weights: str
    field: str

    def run(self, storage: str) -> dict:
        return run_method(self.method, "synth", seed=0, profile="tiny", overrides=self.overrides, device="cpu",
                          storage_url=storage)


SOURCE = Row("source_only", {}, "source", "model.pt", "source")
SSL = Row("clup", {"backbone": "swav"}, "ssl", "backbone.pt", "backbone")


@dataclass(frozen=True)
class Clean:
    """The module's clean home and, per artifact kind, the record of the clean run of its row."""

    home: Path
    records: dict[str, dict]


def _home(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty FERBENCH_HOME at ``path`` whose ``cache/`` links the session's synthetic caches."""
    (path / "cache").mkdir(parents=True)
    for name in ("synth-lab", "synth-wild"):
        (path / "cache" / name).symlink_to(registry.ensure(name), target_is_directory=True)
    monkeypatch.setenv("FERBENCH_HOME", str(path))
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Clean:
    """Clean runs of both rows in a home of their own, with the ``tiny`` profile (1 SSL epoch) for the module."""
    with pytest.MonkeyPatch.context() as patch:
        tiny = tiny_variant()
        patch.setitem(PROFILES, "tiny", dataclasses.replace(tiny, ssl=dataclasses.replace(tiny.ssl, epochs=1,
                                                                                           batch_size=256)))
        home = _home(tmp_path_factory.mktemp("clean"), patch)
        storage = f"sqlite:///{home / 'results.db'}"
        yield Clean(home, {row.kind: row.run(storage) for row in (SOURCE, SSL)})


def _check_fault(row: Row, fault: str, clean: Clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Damage the clean artifact of ``row`` in a copy of the clean home; the next run rebuilds it, gets the clean
    accuracy, and stores only that."""
    kind, weights = row.kind, row.weights
    home = _home(tmp_path / "home", monkeypatch)
    shutil.copytree(clean.home / "artifacts", home / "artifacts", symlinks=True)
    name = clean.records[kind]["artifacts"][row.field]
    folder = home / "artifacts" / kind / name
    DAMAGES[fault](folder, weights)
    if fault == "flipped bytes in the weights":  # still loads, with other values: only the recorded hash tells
        damaged, intact = load_state_dict(folder / weights), load_state_dict(clean.home / folder.relative_to(home) / weights)
        assert damaged.keys() == intact.keys() and not all(map(torch.equal, damaged.values(), intact.values()))
    warnings: list[str] = []
    monkeypatch.setattr(artifacts, "log", warnings.append)
    storage = f"sqlite:///{tmp_path / 'results.db'}"

    record = row.run(storage)

    assert record["artifacts"][row.field] == name and record["artifacts"]["built_now"][name] is True
    others = {k: v for k, v in record["artifacts"]["built_now"].items() if k != name}
    assert not any(others.values())  # only the damaged artifact was trained again
    expected = clean.records[kind]
    assert (record["accuracy"], record["confusion"]) == (expected["accuracy"], expected["confusion"])
    assert record["source_test_accuracy"] == expected["source_test_accuracy"]
    store = open_storage(storage)
    trials = [t for study in optuna.get_all_study_summaries(store)
              for t in optuna.load_study(study_name=study.study_name, storage=store).get_trials(deepcopy=False)]
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE]
    assert [r["accuracy"] for r in completed_records(store)] == [expected["accuracy"]]
    assert_set_aside_once(folder, kind, warnings)
    assert not folder.with_name(f"{name}.partial").exists()


@pytest.mark.parametrize("fault", SOURCE_FAULTS)
def test_a_damaged_source_model_is_rebuilt_never_used(fault, clean, tmp_path, monkeypatch):
    _check_fault(SOURCE, fault, clean, tmp_path, monkeypatch)


@pytest.mark.parametrize("fault", SSL_FAULTS)
def test_a_damaged_ssl_backbone_is_rebuilt_never_used(fault, clean, tmp_path, monkeypatch):
    _check_fault(SSL, fault, clean, tmp_path, monkeypatch)

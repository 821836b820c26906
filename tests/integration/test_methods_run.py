"""Every registered method runs end to end through ``run_method`` on ``synth`` (at a tiny scale), leaves a
complete record in the storage, and the same seed and configuration give the same accuracy."""

from __future__ import annotations

import json
import math

import pytest

from benchmark.orchestration.run import run_method
from benchmark.store.storage import completed_records, open_storage
from datasets.labels import CLASS_NAMES
from methods import registry

#: Every field of docs/PROTOCOL.md's run record.
RECORD_FIELDS = {
    "method", "setup", "profile", "seed", "hparams", "accuracy", "mean_class_accuracy", "class_accuracy",
    "confusion", "n_test", "validators", "pseudo_labels", "artifacts", "seconds", "versions", "data", "device", "threads",
    "machine",
}
#: What each method's adaptation does to the parts of the source model it is given, as each release does it
#: (docs/METHODS.md, "Networks and source recipes"): only SHOT and SHOT-IM freeze the classifier.
TRAINED = {"backbone": "trained", "head.bottleneck": "trained", "head.classifier": "trained"}
PARTS = {"source_only": dict.fromkeys(TRAINED, "frozen"), "shot": {**TRAINED, "head.classifier": "frozen"},
         "shot_im": {**TRAINED, "head.classifier": "frozen"}}
#: Every method this repository ships (plugins from entry points are tested in test_plugins.py).
BUILT_INS = tuple(sorted(name for name, cls in registry.available().items() if cls.__module__.startswith("methods.")))


def test_the_paper_methods_are_built_in():
    assert {"source_only", "oracle", "shot", "shot_im", "clup"} <= set(BUILT_INS)


@pytest.mark.parametrize("method", BUILT_INS)
def test_method_runs_on_synth_and_records_every_field(method: str, tiny: str, storage: str):
    record = run_method(method, "synth", seed=0, profile=tiny, device="cpu", storage_url=storage)
    assert RECORD_FIELDS <= set(record)
    json.dumps(record)  # the record is plain JSON
    assert record["method"] == method and record["profile"] == "tiny" and record["setup"] == "synth"
    assert list(record["class_accuracy"]) == list(CLASS_NAMES)
    assert sum(map(sum, record["confusion"])) == record["n_test"] == 1200
    assert 0.0 <= record["accuracy"] <= 100.0
    assert set(record["validators"]) == {"entropy", "im", "snd"}
    assert all(math.isfinite(v) for v in record["validators"].values())
    assert {"data", "source", "adapt", "evaluate"} <= set(record["seconds"])
    assert record["artifacts"]["source"]
    assert record["source_parts"] == PARTS.get(method, TRAINED)  # CluP: backbone=source keeps the source head
    if method == "clup":
        labels = record["pseudo_labels"]
        assert 0 < labels["kept"] <= 8000 and labels["kept_fraction"] == pytest.approx(labels["kept"] / 8000)
        assert 0.0 <= labels["accuracy_vs_truth"] <= 100.0
        assert record["hparams"]["clusters"] == 100 and record["hparams"]["q"] == 0.8  # the synth setup's
    else:
        assert record["pseudo_labels"] is None
    stored = completed_records(open_storage(storage))
    assert [r["accuracy"] for r in stored] == [record["accuracy"]]


def test_clup_with_a_fresh_head_replaces_the_source_classifier(tiny: str, storage: str):
    record = run_method("clup", "synth", seed=0, profile=tiny, device="cpu", storage_url=storage,
                        overrides={"source_head": "fresh"})
    assert record["source_parts"] == {"backbone": "trained", "head.bottleneck": "replaced",
                                      "head.classifier": "replaced"}


def test_same_seed_same_configuration_same_accuracy(tiny: str, storage: str, monkeypatch):
    messages: list[str] = []
    monkeypatch.setattr("benchmark.orchestration.run.log", messages.append)

    def notes() -> list[str]:
        return [m for m in messages if "already has" in m]

    first = run_method("clup", "synth", seed=5, profile=tiny, device="cpu", storage_url=storage)
    assert notes() == []
    second = run_method("clup", "synth", seed=5, profile=tiny, device="cpu", storage_url=storage)
    assert len(notes()) == 1 and "already has 1 completed trial(s)" in notes()[0]  # the rerun says so
    assert second["accuracy"] == first["accuracy"]
    assert second["confusion"] == first["confusion"]
    assert second["pseudo_labels"] == first["pseudo_labels"]
    assert second["seeds"] == first["seeds"]
    other = run_method("clup", "synth", seed=6, profile=tiny, device="cpu", storage_url=storage)
    assert other["seeds"]["method"] != first["seeds"]["method"]
    assert other["seeds"]["source"] != first["seeds"]["source"]
    assert len(completed_records(open_storage(storage))) == 3  # a rerun adds a trial, never overwrites one
    assert len(notes()) == 1  # another seed is another job

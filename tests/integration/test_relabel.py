"""Relabel and re-prepare: a corrected label file gives a new source model and new runs, never the old ones.

Real-format RAF-DB (source) and FER2013 (target) trees (tests/raw_fixtures.py), the ``tiny`` profile: a sweep
of source-only on ``raf_fer2013`` runs once; three RAF-DB train labels are then changed in the raw partition
file and RAF-DB is prepared again. The same sweep then does not count the old run as done
(``benchmark.orchestration.freshness``): it runs the job again, retraining the source model, whose artifact key
holds the train labels' hash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.orchestration.experiments import Experiment, Row
from benchmark.orchestration.freshness import current_data, made_on_other_data
from benchmark.orchestration.sweep import sweep
from benchmark.store.storage import completed_records, open_storage
from datasets import rafdb, registry
from tests import raw_fixtures as rf

pytestmark = pytest.mark.slow  # two source models and two runs on 2 CPU cores: under a minute

SOURCE_ONLY = Experiment("test_relabel", "source only", rows=(Row("Source", "source_only"),))


def _relabel(root: Path, count: int) -> None:
    """Move the first ``count`` train lines of the RAF-DB partition file to the next class (1-based, 1..7)."""
    path = root / rafdb.ANNOTATION
    lines = path.read_text().splitlines()
    changed = 0
    for i, line in enumerate(lines):
        name, label = line.split()
        if name.startswith("train_") and changed < count:
            lines[i] = f"{name} {int(label) % 7 + 1}"
            changed += 1
    path.write_text("\n".join(lines) + "\n")


def test_relabelled_source_data_reruns_the_job_and_retrains_the_source_model(tmp_path, monkeypatch, tiny, storage):
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))
    raw = tmp_path / "raw"
    rf.make_rafdb(raw / "rafdb", n_train=28, n_test=14)
    rf.make_fer2013(raw / "fer2013", n_train=28, n_test=14)
    registry.prepare("rafdb", raw=raw / "rafdb")
    registry.prepare("fer2013", raw=raw / "fer2013")
    before = current_data("raf_fer2013")
    assert before is not None

    first = sweep(SOURCE_ONLY, ("raf_fer2013",), seeds=1, profile=tiny, storage_url=storage, device="cpu")
    assert (first.done_before, first.ran) == (0, 1)
    again = sweep(SOURCE_ONLY, ("raf_fer2013",), seeds=1, profile=tiny, storage_url=storage, device="cpu")
    assert (again.done_before, again.ran) == (1, 0)  # same data: done

    _relabel(raw / "rafdb", 3)
    registry.prepare("rafdb", raw=raw / "rafdb")
    after = current_data("raf_fer2013")
    assert after["source_train_labels_sha256"] != before["source_train_labels_sha256"]
    assert after["source_train_images_sha256"] == before["source_train_images_sha256"]

    rerun = sweep(SOURCE_ONLY, ("raf_fer2013",), seeds=1, profile=tiny, storage_url=storage, device="cpu")
    assert (rerun.done_before, rerun.ran) == (0, 1)
    old, new = sorted(completed_records(open_storage(storage)), key=lambda r: r["data"] == after)
    assert made_on_other_data(old, after) and not made_on_other_data(new, after)
    assert new["data"]["source_train_labels_sha256"] == after["source_train_labels_sha256"]
    assert new["artifacts"]["source"] != old["artifacts"]["source"]
    assert new["artifacts"]["built_now"][new["artifacts"]["source"]] is True

"""Bad raw input that is a warning, not an error: a class without a sample in a split.

Every bad input that is an error (missing files, malformed lines, bad labels and codes, duplicates, paths
outside the root, corrupt images, crop boxes...) is a row of ``tests/integration/test_data_faults.py``,
which checks the one-line error through the CLI and what ``--skip-bad`` records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datasets import registry
from datasets.cache import read_manifest
from datasets.prepare import EmptyClassWarning
from tests import raw_fixtures as rf


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


# --- empty classes ------------------------------------------------------------------------------


def test_empty_class_is_a_loud_warning(tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path, classes=(0, 1, 2, 3, 4, 5))  # no Neutral anywhere
    with pytest.warns(EmptyClassWarning, match="rafdb (train|test) split has no sample of class 'Neutral'") as got:
        out = registry.prepare("rafdb", raw=tmp_path)
    assert len([w for w in got if issubclass(w.category, EmptyClassWarning)]) == 2
    assert read_manifest(out)["empty_classes"] == {"train": ["Neutral"], "test": ["Neutral"]}


def test_fer2013_missing_class_in_test_only(tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path, n_train=14, n_test=3)  # test labels 3, 4, 5
    with pytest.warns(EmptyClassWarning) as got:
        out = registry.prepare("fer2013", raw=tmp_path)
    messages = [str(w.message) for w in got if issubclass(w.category, EmptyClassWarning)]
    assert messages == ["fer2013 test split has no sample of class 'Surprise', 'Fear', 'Disgust', 'Neutral'"]
    assert read_manifest(out)["empty_classes"]["test"] == ["Surprise", "Fear", "Disgust", "Neutral"]

"""Round trip of each raw format through ``registry.prepare`` into the cache, label maps, the ExpW split."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from datasets import afe, expw, fer2013, rafdb, registry
from datasets.cache import file_sha256, load_split, read_manifest, verify_cache
from datasets.labels import CLASS_NAMES, NUM_CLASSES, class_counts
from tests import raw_fixtures as rf


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test prepares into its own FERBENCH_HOME."""
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


CASES = {
    "rafdb": ("rafdb", rf.make_rafdb, {}),
    "fer2013": ("fer2013", rf.make_fer2013, {"variant": "kaggle"}),
    "fer2013-icml": ("fer2013", rf.make_fer2013, {"variant": "icml"}),
    "afe": ("afe", rf.make_afe, {"layout": "clup"}),
    "afe-cdfer": ("afe", rf.make_afe, {"layout": "cd-fer"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(case: str, tmp_path: Path) -> None:
    name, make, kwargs = CASES[case]
    expected = make(tmp_path / "raw", **kwargs)
    out = registry.prepare(name, raw=tmp_path / "raw")
    assert out == registry.cache_dir(name)
    report = verify_cache(out)
    parser = registry.raw_datasets()[name]
    side, channels = parser.image_size, parser.channels
    for split in ("train", "test"):
        data = load_split(out, split)
        n = len(expected[split])
        assert len(data) == n
        assert data.images.shape == (n, side, side, channels) and data.images.dtype == np.uint8
        assert data.labels.dtype == np.int64
        assert data.labels.tolist() == expected[split]
        assert report["splits"][split] == {"n": n, "class_counts": class_counts(expected[split])}
        rf.assert_face_colours(np.asarray(data.images), data.labels)
    manifest = read_manifest(out)
    assert manifest["dataset"] == name
    assert (manifest["image_size"], manifest["channels"]) == (side, channels)
    assert manifest["skipped"] == {"count": 0, "records": []}
    assert manifest["empty_classes"] == {"train": [], "test": []}
    files = parser().annotation_files(tmp_path / "raw")
    assert manifest["annotation_sha256"] == {
        p.relative_to(tmp_path / "raw").as_posix(): file_sha256(p) for p in files
    }


def test_cached_sizes() -> None:
    sizes = {name: (cls.image_size, cls.channels) for name, cls in registry.raw_datasets().items()}
    assert sizes == {"rafdb": (100, 3), "fer2013": (48, 1), "expw": (112, 3), "afe": (112, 3)}


def test_fer2013_pixels_exact(tmp_path: Path) -> None:
    """FER2013 is lossless: the cache holds exactly the CSV's grey values."""
    rf.make_fer2013(tmp_path, n_train=7, n_test=7)
    rows = (tmp_path / "fer2013.csv").read_text().splitlines()[1:]
    first = np.array(rows[0].split(",")[1].split(), dtype=np.uint8).reshape(48, 48, 1)
    out = registry.prepare("fer2013", raw=tmp_path)
    np.testing.assert_array_equal(load_split(out, "train").images[0], first)


def names(mapping: dict[int, int]) -> dict[int, str]:
    return {code: CLASS_NAMES[index] for code, index in mapping.items()}


def test_label_maps() -> None:
    assert names(rafdb.LABEL_MAP) == {
        1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger", 7: "Neutral"
    }
    fer_names = {0: "Anger", 1: "Disgust", 2: "Fear", 3: "Happiness", 4: "Sadness", 5: "Surprise", 6: "Neutral"}
    assert names(fer2013.LABEL_MAP) == fer_names
    assert names(expw.LABEL_MAP) == fer_names
    assert names(afe.CLUP.codes) == {
        6: "Surprise", 2: "Fear", 1: "Disgust", 3: "Happiness", 5: "Sadness", 0: "Anger", 4: "Neutral"
    }
    assert names(afe.CDFER.codes) == {
        3: "Surprise", 6: "Fear", 5: "Disgust", 1: "Happiness", 4: "Sadness", 9: "Anger", 0: "Neutral"
    }


def test_fer2013_prefers_kaggle_csv(tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path, variant="icml", n_train=7, n_test=7)
    rf.make_fer2013(tmp_path, variant="kaggle", n_train=14, n_test=7)
    out = registry.prepare("fer2013", raw=tmp_path)
    assert read_manifest(out)["csv"] == "fer2013.csv"
    assert len(load_split(out, "train")) == 14


# --- ExpW ---------------------------------------------------------------------------------------


def test_expw_round_trip(tmp_path: Path) -> None:
    faces = rf.make_expw(tmp_path / "raw")
    out = registry.prepare("expw", raw=tmp_path / "raw", split_seed=3)
    verify_cache(out)
    parser = expw.ExpW(split_seed=3)
    index = parser.index(tmp_path / "raw")
    manifest = read_manifest(out)
    total = 0
    for split in ("train", "test"):
        data = load_split(out, split)
        assert data.images.shape == (len(index[split]), 112, 112, 3) and data.images.dtype == np.uint8
        assert data.labels.tolist() == [s.label for s in index[split]]
        rf.assert_face_colours(np.asarray(data.images), data.labels)
        total += len(data)
    assert total == len(faces)
    assert manifest["split_seed"] == 3 and "grouped-stratified" in manifest["split_method"]
    assert manifest["test_index_sha256"] == parser.manifest_extras()["test_index_sha256"]
    assert len(manifest["test_index_sha256"]) == 64


def test_expw_labels_follow_annotation(tmp_path: Path) -> None:
    faces = rf.make_expw(tmp_path)
    keys = list(faces)  # the fixture writes one face per line, in this order
    samples = [s for split in expw.ExpW().index(tmp_path).values() for s in split]
    assert sorted(s.line for s in samples) == list(range(1, len(faces) + 1))
    for s in samples:
        key = keys[s.line - 1]
        assert key.startswith(f"{s.group}:") and s.label == faces[key]
        assert s.source == tmp_path / "image" / "origin" / s.group


def test_expw_split_deterministic_grouped_stratified(tmp_path: Path) -> None:
    rf.make_expw(tmp_path, n_photos=70)
    first = expw.ExpW(split_seed=7)
    split_a = first.index(tmp_path)
    split_b = expw.ExpW(split_seed=7).index(tmp_path)
    other = expw.ExpW(split_seed=8)
    other.index(tmp_path)
    assert split_a == split_b
    assert first.manifest_extras()["test_index_sha256"] != other.manifest_extras()["test_index_sha256"]
    groups = {split: {s.group for s in samples} for split, samples in split_a.items()}
    assert not groups["train"] & groups["test"], "a photo's faces were split across train and test"
    group_share = len(groups["test"]) / (len(groups["train"]) + len(groups["test"]))
    face_share = len(split_a["test"]) / (len(split_a["train"]) + len(split_a["test"]))
    assert 0.15 <= group_share <= 0.25 and 0.12 <= face_share <= 0.32
    for split in ("train", "test"):
        assert {s.label for s in split_a[split]} == set(range(NUM_CLASSES))


def test_grouped_stratified_split_large() -> None:
    """On 6,000 photos (1 to 3 faces), each class's test share is 20% +- 2% and groups never straddle."""
    rng = np.random.default_rng(0)
    groups, labels = [], []
    for g in range(6000):
        for _ in range(1 + int(rng.integers(0, 3) == 0) * int(rng.integers(1, 3))):
            groups.append(f"img{g}.jpg")
            labels.append(int(rng.choice(NUM_CLASSES, p=[0.05, 0.05, 0.1, 0.3, 0.15, 0.1, 0.25])))
    test = expw.grouped_stratified_split(groups, labels, seed=1)
    np.testing.assert_array_equal(test, expw.grouped_stratified_split(groups, labels, seed=1))
    order = rng.permutation(len(groups))
    shuffled = expw.grouped_stratified_split([groups[i] for i in order], [labels[i] for i in order], seed=1)
    np.testing.assert_array_equal(shuffled, test[order])
    where: dict[str, set[bool]] = defaultdict(set)
    for group, is_test in zip(groups, test.tolist()):
        where[group].add(is_test)
    assert all(len(v) == 1 for v in where.values())
    labels_arr = np.array(labels)
    for c in range(NUM_CLASSES):
        share = test[labels_arr == c].mean()
        assert abs(share - 0.2) <= 0.02, (CLASS_NAMES[c], share)

"""Round trip of each raw format through ``registry.prepare`` into the cache, label maps, the ExpW split."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main
from datasets import afe, expw, fer2013, rafdb, registry
from datasets.cache import file_sha256, load_split, read_manifest, verify_cache
from datasets.errors import DatasetError
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
    assert sizes == {"rafdb": (100, 3), "fer2013": (48, 1), "expw": (160, 3), "afe": (160, 3)}


def test_afe_crop_cached_at_160_without_resampling(tmp_path: Path) -> None:
    """A 160 x 160 face box is cached pixel for pixel: the paper profile's size, never a resampled 112."""
    rf.make_afe(tmp_path / "raw", n_train=7, n_test=7, image=(200, 180), box=(30, 10, 190, 170))
    out = registry.prepare("afe", raw=tmp_path / "raw")
    sample = afe.Afe().index(tmp_path / "raw")["train"][0]
    with Image.open(sample.source) as photo:
        crop = np.asarray(photo.convert("RGB"))[10:170, 30:190]
    np.testing.assert_array_equal(load_split(out, "train").images[0], crop)


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "rgb"])
def test_16bit_png_is_scaled_not_clipped(colour: bool, tmp_path: Path) -> None:
    """16-bit PNGs are converted, never clipped at 255: grey (Pillow mode I;16) is scaled by us,
    v -> round(v * 255 / 65535); RGB comes out of Pillow as its high byte, v >> 8 (within one level)."""
    rf.make_afe(tmp_path / "raw", n_train=7, n_test=7, image=(160, 160), box=(0, 0, 160, 160))
    ramp = (np.arange(160 * 160, dtype=np.int64).reshape(160, 160) * 65535 // (160 * 160 - 1)).astype(np.uint16)
    values = np.stack([ramp, ramp[::-1], ramp.T], axis=2) if colour else ramp
    sample = afe.Afe().index(tmp_path / "raw")["train"][0]
    sample.source.write_bytes(rf.png16(values))
    with Image.open(sample.source) as opened:
        assert opened.mode == ("RGB" if colour else "I;16")
    out = registry.prepare("afe", raw=tmp_path / "raw")
    wide = values.astype(np.int64)
    expected = (wide >> 8) if colour else np.repeat(((wide + 128) // 257)[..., None], 3, axis=2)
    np.testing.assert_array_equal(load_split(out, "train").images[0], expected.astype(np.uint8))
    assert expected.max() == 255 and expected.min() == 0 and len(np.unique(expected)) == 256


@pytest.mark.parametrize("name, make, options", [
    ("afe", rf.make_afe, []),
    ("expw", rf.make_expw, ["--split-seed", "3"]),
])
def test_cache_of_an_older_parser_is_refused(
    name: str, make: Callable[[Path], object], options: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 112-px cache (parser version 1) is never used: the error gives the exact command that rebuilds it."""
    make(tmp_path / "raw")
    parser = registry.raw_datasets()[name]
    version = parser.version
    with monkeypatch.context() as old:
        old.setattr(parser, "image_size", 112)
        old.setattr(parser, "version", 1)
        assert main(["data", "prepare", name, "--raw", str(tmp_path / "raw"), *options]) == 0
    manifest = read_manifest(registry.cache_dir(name))
    assert (manifest["image_size"], manifest["parser_version"]) == (112, 1)
    command = " ".join(["python -m benchmark data prepare", name, "--raw", str(tmp_path / "raw"), *options])
    message = re.escape(f"at 112 px x 3 channel(s); this version caches {name!r} by parser version {version} at 160 px x 3: "
                        f"rebuild it with `{command}`")
    for use in (registry.ensure, lambda n: registry.load(n, "train"), registry.verify):
        with pytest.raises(DatasetError, match=message):
            use(name)
    capsys.readouterr()
    assert main(command.split()[3:]) == 0  # the command as printed
    assert registry.load(name, "train").images.shape[1:] == (160, 160, 3)
    assert read_manifest(registry.ensure(name))["parser_version"] == version


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
        assert data.images.shape == (len(index[split]), 160, 160, 3) and data.images.dtype == np.uint8
        assert data.labels.tolist() == [s.label for s in index[split]]
        rf.assert_face_colours(np.asarray(data.images), data.labels)
        total += len(data)
    assert total == len(faces)
    assert manifest["split_seed"] == 3 and "grouped-stratified" in manifest["split_method"]
    assert manifest["test_index_sha256"] == expw.index_sha256([str(s.key) for s in index["test"]])
    assert manifest["test_groups"] == len({s.group for s in index["test"]})
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
    split_c = other.index(tmp_path)
    assert split_a == split_b
    assert first.manifest_extras(split_a)["test_index_sha256"] != other.manifest_extras(split_c)["test_index_sha256"]
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

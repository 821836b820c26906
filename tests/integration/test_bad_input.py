"""Bad raw input is a DatasetError naming the file (and 1-based line), never a silent drop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datasets import afe, expw, rafdb, registry
from datasets.cache import read_manifest
from datasets.errors import DatasetError
from datasets.prepare import EmptyClassWarning
from tests import raw_fixtures as rf


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


def at(path: Path, line: int | None = None) -> str:
    """Regex prefix of a DatasetError located at ``path`` (and ``line``)."""
    return re.escape(f"{path}:{line}: " if line is not None else f"{path}: ")


def set_line(path: Path, line: int, text: str) -> None:
    """Replace 1-based ``line`` of ``path`` (append when ``line`` is one past the end)."""
    lines = path.read_text().splitlines()
    if line == len(lines) + 1:
        lines.append(text)
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def prepare(name: str, root: Path) -> None:
    registry.prepare(name, raw=root)


# --- missing root / annotation ------------------------------------------------------------------

LAYOUT_HINTS = {
    "rafdb": "list_patition_label.txt",
    "fer2013": "fer2013.csv",
    "expw": "label/label.lst",
    "afe": "annos/TrainTest/Train.csv",
}


@pytest.mark.parametrize("name", list(LAYOUT_HINTS))
def test_missing_root(name: str, tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=at(root) + r"raw dataset root not found; expected layout: .*"
                       + re.escape(LAYOUT_HINTS[name])):
        prepare(name, root)


@pytest.mark.parametrize("name", list(LAYOUT_HINTS))
def test_missing_annotation(name: str, tmp_path: Path) -> None:
    (tmp_path / "unrelated.txt").write_text("x\n")
    with pytest.raises(DatasetError, match=r"annotation file not found; expected layout: .*"
                       + re.escape(LAYOUT_HINTS[name])) as info:
        prepare(name, tmp_path)
    assert info.value.path is not None and info.value.path.is_relative_to(tmp_path)


def test_missing_afe_test_list(tmp_path: Path) -> None:
    rf.make_afe(tmp_path)
    (tmp_path / afe.CLUP.lists["test"]).unlink()
    with pytest.raises(DatasetError, match=at(tmp_path / afe.CLUP.lists["test"]) + "annotation file not found"):
        prepare("afe", tmp_path)


# --- images -------------------------------------------------------------------------------------


def test_missing_image_names_image_and_line(tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path)
    image = tmp_path / rafdb.IMAGES / "train_00003_aligned.jpg"
    image.unlink()
    with pytest.raises(DatasetError, match=at(tmp_path / rafdb.ANNOTATION, 3) + "image file not found: "
                       + re.escape(str(image))):
        prepare("rafdb", tmp_path)


def test_missing_afe_image(tmp_path: Path) -> None:
    rf.make_afe(tmp_path)
    image = tmp_path / afe.CLUP.images / "film_1" / "test_0004.png"
    image.unlink()
    with pytest.raises(DatasetError, match=at(tmp_path / afe.CLUP.lists["test"], 5) + "image file not found: "
                       + re.escape(str(image))):
        prepare("afe", tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_image(damage: str, tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path)
    image = tmp_path / rafdb.IMAGES / "test_0002_aligned.jpg"
    data = image.read_bytes()
    damaged = {"garbage": b"this is not a JPEG" * 10, "truncated": data[: len(data) // 2], "empty": b""}
    image.write_bytes(damaged[damage])
    line = 14 + 2  # after the 14 train lines
    with pytest.raises(DatasetError, match=at(tmp_path / rafdb.ANNOTATION, line) + "cannot read image "
                       + re.escape(str(image))):
        prepare("rafdb", tmp_path)


def test_expw_corrupt_photo(tmp_path: Path) -> None:
    rf.make_expw(tmp_path)
    (tmp_path / expw.IMAGES / "photo_0000.jpg").write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetError, match=at(tmp_path / expw.ANNOTATION, 1) + "cannot read image .*photo_0000.jpg"):
        prepare("expw", tmp_path)


# --- label codes --------------------------------------------------------------------------------


def test_rafdb_label_outside_map(tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path)
    ann = tmp_path / rafdb.ANNOTATION
    set_line(ann, 5, "train_00005.jpg 8")
    with pytest.raises(DatasetError, match=at(ann, 5) + "label code 8 is outside the label map"):
        prepare("rafdb", tmp_path)


def test_fer2013_emotion_outside_map(tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path)
    csv = tmp_path / "fer2013.csv"
    row = csv.read_text().splitlines()[3].split(",")
    set_line(csv, 4, ",".join(["7", *row[1:]]))
    with pytest.raises(DatasetError, match=at(csv, 4) + "emotion code 7 is outside the label map"):
        prepare("fer2013", tmp_path)


def test_expw_label_outside_map(tmp_path: Path) -> None:
    rf.make_expw(tmp_path)
    ann = tmp_path / expw.ANNOTATION
    set_line(ann, 2, "photo_0001.jpg 0 10 10 70 70 0.9 -1")
    with pytest.raises(DatasetError, match=at(ann, 2) + "label code -1 is outside the label map"):
        prepare("expw", tmp_path)


@pytest.mark.parametrize("layout, code", [("clup", 7), ("cd-fer", 2)])
def test_afe_emotion_outside_map(layout: str, code: int, tmp_path: Path) -> None:
    rf.make_afe(tmp_path, layout=layout)
    ann = tmp_path / {"clup": afe.CLUP, "cd-fer": afe.CDFER}[layout].lists["train"]
    set_line(ann, 6, f"film_2/train_0005.png 20 16 100 104 {code}")
    with pytest.raises(DatasetError, match=at(ann, 6) + f"emotion code {code} is outside the label map"):
        prepare("afe", tmp_path)


# --- malformed lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("train_00009.jpg", "expected 2 whitespace-separated fields (image_name label), got 1"),
        ("train_00009.jpg 3 extra", "expected 2 whitespace-separated fields"),
        ("train_00009.jpg five", "field 'label' must be an integer, got 'five'"),
        ("val_00009.jpg 3", "image name 'val_00009.jpg' starts with neither `train_` nor `test_`"),
    ],
)
def test_rafdb_malformed_line(text: str, message: str, tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path)
    set_line(tmp_path / rafdb.ANNOTATION, 9, text)
    with pytest.raises(DatasetError, match=at(tmp_path / rafdb.ANNOTATION, 9) + re.escape(message)):
        prepare("rafdb", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("photo_0002.jpg 0 10 10 70 70 3", "expected 8 whitespace-separated fields"),
        ("photo_0002.jpg 0 ten 10 70 70 0.9 3", "field 'top' must be an integer, got 'ten'"),
        ("photo_0002.jpg x 10 10 70 70 0.9 3", "field 'face_id' must be an integer"),
        ("photo_0002.jpg 0 10 10 70 70 high 3", "field 'confidence' must be a number, got 'high'"),
    ],
)
def test_expw_malformed_line(text: str, message: str, tmp_path: Path) -> None:
    rf.make_expw(tmp_path)
    ann = tmp_path / expw.ANNOTATION
    set_line(ann, 3, text)
    with pytest.raises(DatasetError, match=at(ann, 3) + re.escape(message)):
        prepare("expw", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("film_0/test_0000.png 20 16 100 104", "expected 6 whitespace-separated fields"),
        ("film_0/test_0000.png 20.5 16 100 104 3", "field 'left' must be an integer, got '20.5'"),
    ],
)
def test_afe_malformed_line(text: str, message: str, tmp_path: Path) -> None:
    rf.make_afe(tmp_path)
    ann = tmp_path / afe.CLUP.lists["test"]
    set_line(ann, 1, text)
    with pytest.raises(DatasetError, match=at(ann, 1) + re.escape(message)):
        prepare("afe", tmp_path)


def test_non_utf8_line(tmp_path: Path) -> None:
    rf.make_rafdb(tmp_path)
    ann = tmp_path / rafdb.ANNOTATION
    ann.write_bytes(ann.read_bytes() + b"train_\xff.jpg 1\n")
    with pytest.raises(DatasetError, match=at(ann, 22) + "line is not UTF-8 text"):
        prepare("rafdb", tmp_path)


@pytest.mark.parametrize(
    "row, message",
    [
        ("3,1 2 3", "expected 3 comma-separated fields"),
        ("three,{pixels},Training", "field 'emotion' must be an integer, got 'three'"),
        ("3,{pixels},Validation", "Usage 'Validation' is none of"),
    ],
)
def test_fer2013_malformed_row(row: str, message: str, tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path)
    csv = tmp_path / "fer2013.csv"
    pixels = csv.read_text().splitlines()[1].split(",")[1]
    set_line(csv, 7, row.format(pixels=pixels))
    with pytest.raises(DatasetError, match=at(csv, 7) + re.escape(message)):
        prepare("fer2013", tmp_path)


def test_fer2013_header_lacks_column(tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path)
    csv = tmp_path / "fer2013.csv"
    set_line(csv, 1, "emotion,pixel,Usage")
    header_error = "CSV header ['emotion', 'pixel', 'Usage'] lacks column(s) ['pixels']"
    with pytest.raises(DatasetError, match=at(csv, 1) + re.escape(header_error)):
        prepare("fer2013", tmp_path)


@pytest.mark.parametrize(
    "pixels, message",
    [
        (" ".join(["7"] * 2303), "pixel string has 2303 values, expected 2304 (48x48)"),
        (" ".join(["7"] * 2305), "pixel string has 2305 values, expected 2304"),
        (" ".join(["7"] * 2303 + ["x"]), "pixel string holds a value that is not an integer"),
        (" ".join(["7"] * 2303 + ["256"]), "pixel values must lie in 0..255"),
    ],
)
def test_fer2013_bad_pixel_string(pixels: str, message: str, tmp_path: Path) -> None:
    rf.make_fer2013(tmp_path, variant="icml")
    csv = tmp_path / "icml_face_data.csv"
    set_line(csv, 10, f"3, Training, {pixels}")
    with pytest.raises(DatasetError, match=at(csv, 10) + re.escape(message)):
        prepare("fer2013", tmp_path)


# --- crop boxes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("box", ["70 10 10 70", "10 10 10 70", "10 70 70 70"])
def test_afe_empty_box(box: str, tmp_path: Path) -> None:
    rf.make_afe(tmp_path)
    ann = tmp_path / afe.CLUP.lists["train"]
    set_line(ann, 2, f"film_1/train_0001.png {box} 3")
    with pytest.raises(DatasetError, match=at(ann, 2) + re.escape("empty crop box (left, top, right, bottom)")):
        prepare("afe", tmp_path)


def test_expw_empty_box(tmp_path: Path) -> None:
    rf.make_expw(tmp_path)
    ann = tmp_path / expw.ANNOTATION
    set_line(ann, 1, "photo_0000.jpg 0 50 10 70 40 0.9 3")  # top 50 > bottom 40
    with pytest.raises(DatasetError, match=at(ann, 1) + re.escape("empty crop box")):
        prepare("expw", tmp_path)


@pytest.mark.parametrize("name", ["expw", "afe"])
def test_box_outside_image(name: str, tmp_path: Path) -> None:
    if name == "expw":
        rf.make_expw(tmp_path)
        ann, text, image = tmp_path / expw.ANNOTATION, "photo_0000.jpg 0 10 500 560 70 0.9 3", "photo_0000.jpg"
    else:
        rf.make_afe(tmp_path)
        ann, image = tmp_path / afe.CLUP.lists["train"], "train_0000.png"
        text = "film_0/train_0000.png 20 130 100 200 3"  # top 130 below the 128-pixel-high image
    set_line(ann, 1, text)
    with pytest.raises(DatasetError, match=at(ann, 1) + r"crop box \(.*\) lies outside the \d+x\d+ image .*" + image):
        prepare(name, tmp_path)


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
    messages = " ".join(str(w.message) for w in got)
    for cls in ("Surprise", "Fear", "Disgust", "Neutral"):
        assert f"test split has no sample of class {cls!r}" in messages
    assert "train split" not in messages
    assert read_manifest(out)["empty_classes"]["test"] == ["Surprise", "Fear", "Disgust", "Neutral"]

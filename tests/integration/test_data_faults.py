"""The data layer's fault matrix: every way a raw release or a prepared cache can be wrong, one row each.

A raw-release row damages a tiny release in its real layout (``tests/raw_fixtures.py``) and runs
``python -m benchmark data prepare`` in-process (``benchmark.cli.main``): exit status 2 and exactly one
line on stderr, ``error: <file>:<line>: <message>``, no traceback, no cache. A row ``--skip-bad`` may skip
is run again with it: the prepare succeeds and the manifest lists the record (file and line); the others
fail the same way with it. The prepared cache's faults, and the cases that are not errors, are in
``test_cache_faults.py``. Elsewhere: 16-bit PNGs and the 160-px caches
in ``tests/unit/test_raw_formats.py``, a real SIGKILL in ``test_prepare_atomic.py``, manifest fields one by
one in ``tests/unit/test_data_manifest.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main
from datasets import afe, expw, rafdb, registry
from datasets.cache import read_manifest
from tests import raw_fixtures as rf

#: A damage: writes a damaged raw release at ``root``, returns where the error must point (file, line).
Damage = Callable[[Path], tuple[Path, "int | None"]]

RAF_ANN = rafdb.ANNOTATION
EXPW_ANN = expw.ANNOTATION
AFE_TRAIN, AFE_TEST = afe.CLUP.lists["train"], afe.CLUP.lists["test"]
FER_CSV = Path("fer2013.csv")
PIXELS = " ".join(["7"] * 2304)


@dataclass(frozen=True)
class Fault:
    """One row: the dataset, the damage, the texts the error line must hold (``{root}`` is the raw root),
    whether ``--skip-bad`` skips it, and further lines it then lists (every copy of a conflicting key)."""

    dataset: str
    damage: Damage
    needs: tuple[str, ...]
    skippable: bool = False
    also_skipped: tuple[int, ...] = ()


def make(dataset: str) -> Callable[[Path], object]:
    """The fixture writer of ``dataset`` (default sizes: RAF-DB and AFE 14 + 7 faces, ExpW 42 photos)."""
    return {"rafdb": rf.make_rafdb, "fer2013": rf.make_fer2013, "expw": rf.make_expw, "afe": rf.make_afe}[dataset]


def line(dataset: str, annotation: Path, number: int, text: str, **options: str) -> Damage:
    """Replace (or append, one past the end) line ``number`` of ``annotation`` (``options``: the fixture's)."""

    def damage(root: Path) -> tuple[Path, int | None]:
        make(dataset)(root, **options)
        rf.set_line(root / annotation, number, text.format(pixels=PIXELS))
        return root / annotation, number

    return damage


def copy_line(dataset: str, source: Path, number: int, target: Path | None = None, *, at: int | None = None,
              label: str | None = None) -> Damage:
    """Copy line ``number`` of ``source`` to line ``at`` of ``target`` (default: appended to ``source``), with
    its last field replaced by ``label`` when given. Points at the copy, or at the original when the labels
    conflict (its first copy is then the first bad record)."""

    def damage(root: Path) -> tuple[Path, int | None]:
        make(dataset)(root)
        text = (root / source).read_text().splitlines()[number - 1]
        if label is not None:
            text = text.rsplit(" ", 1)[0] + " " + label
        into = root / (target or source)
        where = at or len(into.read_text().splitlines()) + 1
        rf.set_line(into, where, text)
        return (root / source, number) if label is not None else (into, where)

    return damage


def missing_file(dataset: str, annotation: Path) -> Damage:
    """Delete ``annotation``; the error points at it."""

    def damage(root: Path) -> tuple[Path, int | None]:
        make(dataset)(root)
        (root / annotation).unlink()
        return root / annotation, None

    return damage


def whole_file(dataset: str, annotation: Path, text: str) -> Damage:
    """Overwrite ``annotation`` with ``text``; the error points at the file (no line)."""

    def damage(root: Path) -> tuple[Path, int | None]:
        make(dataset)(root)
        (root / annotation).write_text(text)
        return root / annotation, None

    return damage


def image(dataset: str, relative: Path, data: bytes | Callable[[bytes], bytes] | None, annotation: Path,
          number: int) -> Damage:
    """Delete (``data`` None) or overwrite the image file ``relative`` with ``data`` (or ``data(old bytes)``);
    the error points at its annotation line."""

    def damage(root: Path) -> tuple[Path, int | None]:
        make(dataset)(root)
        path = root / relative
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data(path.read_bytes()) if callable(data) else data)
        return root / annotation, number

    return damage


def no_root(root: Path) -> tuple[Path, int | None]:
    """Nothing at ``root``; the error points at it."""
    return root, None


def no_annotation(expected: Path) -> Damage:
    """A raw root without the annotation file; the error points at ``expected`` under it."""

    def damage(root: Path) -> tuple[Path, int | None]:
        root.mkdir(parents=True)
        (root / "unrelated.txt").write_text("x\n")
        return root / expected, None

    return damage


def rafdb_without_test(root: Path) -> tuple[Path, int | None]:
    """RAF-DB with its 14 train lines only: the test split is empty; the error points at the root."""
    rf.make_rafdb(root)
    (root / RAF_ANN).write_text("".join(t + "\n" for t in (root / RAF_ANN).read_text().splitlines()[:14]))
    return root, None


def fer2013_without_header(root: Path) -> tuple[Path, int | None]:
    """FER2013 whose header line is gone: the first line is a data row holding 2304 pixel values."""
    rf.make_fer2013(root)
    (root / FER_CSV).write_text("\n".join((root / FER_CSV).read_text().splitlines()[1:]) + "\n")
    return root / FER_CSV, 1


def rafdb_non_utf8_line(root: Path) -> tuple[Path, int | None]:
    """RAF-DB with a 22nd line that is not UTF-8."""
    rf.make_rafdb(root)
    (root / RAF_ANN).write_bytes((root / RAF_ANN).read_bytes() + b"train_\xff.jpg 1\n")
    return root / RAF_ANN, 22


def float_tiff() -> bytes:
    """A 32-bit float TIFF (Pillow mode F): no agreed range, refused."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((128, 128), 0.5, dtype=np.float32)).save(buffer, format="TIFF")
    return buffer.getvalue()


RAF_IMAGE = rafdb.IMAGES
AFE_IMAGES = afe.CLUP.images
LAYOUT_HINTS = {"rafdb": "list_patition_label.txt", "fer2013": "fer2013.csv", "expw": "label/label.lst",
                "afe": "annos/TrainTest/Train.csv"}
MISSING_ANNOTATION = {"rafdb": RAF_ANN, "fer2013": FER_CSV, "expw": EXPW_ANN, "afe": AFE_TRAIN}

FAULTS: dict[str, Fault] = {
    # --- missing inputs (never skippable) ---
    **{f"{name}-missing-root": Fault(name, no_root, ("raw dataset root not found; expected layout:", hint))
       for name, hint in LAYOUT_HINTS.items()},
    **{f"{name}-missing-annotation": Fault(name, no_annotation(MISSING_ANNOTATION[name]),
                                           ("annotation file not found; expected layout:", LAYOUT_HINTS[name]))
       for name in LAYOUT_HINTS},
    "afe-missing-test-list": Fault("afe", missing_file("afe", AFE_TEST), ("annotation file not found",)),
    # --- empty inputs ---
    "rafdb-empty-label-file": Fault("rafdb", whole_file("rafdb", RAF_ANN, ""), ("holds no record (it is empty)",)),
    "rafdb-blank-label-file": Fault("rafdb", whole_file("rafdb", RAF_ANN, "\n  \n"), ("holds no record",)),
    "rafdb-no-test-record": Fault("rafdb", rafdb_without_test,
                                  (f"the test split is empty: no usable test record in {RAF_ANN.as_posix()}",)),
    "expw-empty-label-file": Fault("expw", whole_file("expw", EXPW_ANN, ""), ("holds no record",)),
    "afe-empty-train-csv": Fault("afe", whole_file("afe", AFE_TRAIN, ""), ("holds no record",)),
    "fer2013-empty-csv": Fault("fer2013", whole_file("fer2013", FER_CSV, ""), ("the CSV file is empty",)),
    "fer2013-header-only": Fault("fer2013", whole_file("fer2013", FER_CSV, "emotion,pixels,Usage\n"),
                                 ("the CSV file has a header but no data row",)),
    # --- duplicate keys ---
    "rafdb-duplicate-line": Fault("rafdb", copy_line("rafdb", RAF_ANN, 3),
                                  ("duplicate of 'train_00003.jpg' first listed at line 3",),
                                  skippable=True),
    "rafdb-duplicate-conflicting-label": Fault(
        "rafdb", copy_line("rafdb", RAF_ANN, 3, at=22, label="7"),
        ("'train_00003.jpg' is listed 2 times with conflicting labels: line 3 (Disgust), line 22 (Neutral)",),
        skippable=True, also_skipped=(22,)),
    "expw-duplicate-face": Fault("expw", copy_line("expw", EXPW_ANN, 1),
                                 ("duplicate of 'photo_0000.jpg:0' first listed at line 1",), skippable=True),
    "afe-same-face-in-train-and-test": Fault(
        "afe", copy_line("afe", AFE_TRAIN, 1, AFE_TEST, at=1),
        ("duplicate of 'src/image/film_0/train_0000.png 20 16 100 104' first listed at {root}/" + f"{AFE_TRAIN}:1",),
        skippable=True),
    "afe-conflicting-labels-in-train-and-test": Fault(
        "afe", copy_line("afe", AFE_TRAIN, 1, AFE_TEST, at=1, label="0"),
        ("'src/image/film_0/train_0000.png 20 16 100 104' is listed 2 times with conflicting labels: "
         "line 1 (Surprise), {root}/" + f"{AFE_TEST}:1 (Anger)",), skippable=True),
    # --- duplicate columns, missing header, quotes ---
    "fer2013-duplicate-column": Fault("fer2013", line("fer2013", FER_CSV, 1, "emotion,pixels,Usage,emotion"),
                                      ("names column(s) ['emotion'] more than once",)),
    "fer2013-missing-header": Fault("fer2013", fer2013_without_header,
                                    ("no CSV header: the first line", "names none of ['emotion', 'pixels', 'Usage']")),
    "fer2013-header-lacks-column": Fault("fer2013", line("fer2013", FER_CSV, 1, "emotion,pixel,Usage"),
                                         ("CSV header ['emotion', 'pixel', 'Usage'] lacks column(s) ['pixels']",)),
    "fer2013-unterminated-quote": Fault("fer2013", line("fer2013", FER_CSV, 5, '3,"{pixels},Training'),
                                        ("unterminated quote: the row runs on to line",)),
    # --- numbers and labels: plain ASCII digits only ---
    "rafdb-label-with-underscore": Fault("rafdb", line("rafdb", RAF_ANN, 5, "train_00005.jpg 0_3"),
                                         ("field 'label' must be an integer, got '0_3'",), skippable=True),
    "rafdb-label-arabic-indic-digit": Fault("rafdb", line("rafdb", RAF_ANN, 5, "train_00005.jpg \u0663"),
                                            ("field 'label' must be an integer, got '\u0663'",), skippable=True),
    "rafdb-label-plus-sign": Fault("rafdb", line("rafdb", RAF_ANN, 5, "train_00005.jpg +3"),
                                   ("field 'label' must be an integer, got '+3'",), skippable=True),
    "fer2013-emotion-arabic-indic-digit": Fault("fer2013", line("fer2013", FER_CSV, 4, "\u0663,{pixels},Training"),
                                                ("field 'emotion' must be an integer",), skippable=True),
    "fer2013-pixel-with-underscore": Fault(
        "fer2013", line("fer2013", FER_CSV, 4, "3," + " ".join(["7"] * 2303 + ["1_0"]) + ",Training"),
        ("pixel string holds a value that is not an integer in ASCII digits",), skippable=True),
    "fer2013-pixel-arabic-indic-digit": Fault(
        "fer2013", line("fer2013", FER_CSV, 4, "3," + " ".join(["7"] * 2303 + ["\u0663"]) + ",Training"),
        ("pixel string holds a value that is not an integer in ASCII digits",), skippable=True),
    "expw-confidence-nan": Fault("expw", line("expw", EXPW_ANN, 3, "photo_0002.jpg 0 10 10 70 70 nan 3"),
                                 ("field 'confidence' must be a number, got 'nan'",), skippable=True),
    "expw-face-id-fullwidth-digit": Fault("expw", line("expw", EXPW_ANN, 3, "photo_0002.jpg \uff11 10 10 70 70 0.9 3"),
                                          ("field 'face_id' must be an integer",), skippable=True),
    "afe-box-arabic-indic-digit": Fault(
        "afe", line("afe", AFE_TRAIN, 2, "film_1/train_0001.png \u0662\u0660 16 100 104 3"),
        ("field 'left' must be an integer",), skippable=True),
    # --- paths confined to the raw root ---
    "afe-absolute-path": Fault("afe", line("afe", AFE_TRAIN, 2, "/etc/hostname 20 16 100 104 3"),
                               ("path '/etc/hostname' points outside the raw root",), skippable=True),
    "afe-dotdot-out-of-root": Fault("afe", line("afe", AFE_TRAIN, 2, "../../../secret.png 20 16 100 104 3"),
                                    ("path '../../../secret.png' points outside the raw root",), skippable=True),
    "expw-dotdot-out-of-root": Fault("expw", line("expw", EXPW_ANN, 2, "../../../x.jpg 0 10 10 70 70 0.9 3"),
                                     ("image_name '../../../x.jpg' points outside the raw root",), skippable=True),
    "rafdb-dotdot-out-of-root": Fault("rafdb", line("rafdb", RAF_ANN, 2, "train_/../../../../../x.jpg 3"),
                                      ("points outside the raw root",), skippable=True),
    # --- images ---
    "rafdb-missing-image": Fault("rafdb", image("rafdb", RAF_IMAGE / "train_00003_aligned.jpg", None, RAF_ANN, 3),
                                 ("image file not found: {root}/" + f"{RAF_IMAGE}/train_00003_aligned.jpg",),
                                 skippable=True),
    "afe-missing-image": Fault("afe", image("afe", AFE_IMAGES / "film_1/test_0004.png", None, AFE_TEST, 5),
                               ("image file not found: {root}/" + f"{AFE_IMAGES}/film_1/test_0004.png",),
                               skippable=True),
    **{f"rafdb-{kind}-jpeg": Fault("rafdb", image("rafdb", RAF_IMAGE / "test_0002_aligned.jpg", data, RAF_ANN, 16),
                                   ("cannot read image {root}/" + f"{RAF_IMAGE}/test_0002_aligned.jpg",),
                                   skippable=True)
       for kind, data in [("garbage", b"this is not a JPEG" * 10), ("empty", b""),
                          ("truncated", lambda old: old[: len(old) // 2])]},
    "expw-corrupt-photo": Fault("expw", image("expw", expw.IMAGES / "photo_0000.jpg", b"\x89PNG broken", EXPW_ANN, 1),
                                ("cannot read image", "photo_0000.jpg"), skippable=True),
    "afe-decompression-bomb-100m-pixels": Fault(
        "afe", image("afe", AFE_IMAGES / "film_0/train_0000.png", rf.png_bytes(10_000, 10_000), AFE_TRAIN, 1),
        ("cannot read image", "could be decompression bomb"), skippable=True),
    "afe-decompression-bomb-400m-pixels": Fault(
        "afe", image("afe", AFE_IMAGES / "film_0/train_0000.png", rf.png_bytes(20_000, 20_000), AFE_TRAIN, 1),
        ("cannot read image", "could be decompression bomb"), skippable=True),
    "afe-float-image": Fault("afe", image("afe", AFE_IMAGES / "film_0/train_0000.png", float_tiff(), AFE_TRAIN, 1),
                             ("unsupported pixel mode 'F'",), skippable=True),
    # --- label codes outside the map ---
    "rafdb-label-outside-map": Fault("rafdb", line("rafdb", RAF_ANN, 5, "train_00005.jpg 8"),
                                     ("label code 8 is outside the label map",), skippable=True),
    "fer2013-emotion-outside-map": Fault("fer2013", line("fer2013", FER_CSV, 4, "7,{pixels},Training"),
                                         ("emotion code 7 is outside the label map",), skippable=True),
    "expw-label-outside-map": Fault("expw", line("expw", EXPW_ANN, 2, "photo_0001.jpg 0 10 10 70 70 0.9 -1"),
                                    ("label code -1 is outside the label map",), skippable=True),
    "afe-clup-code-outside-map": Fault("afe", line("afe", AFE_TRAIN, 6, "film_2/train_0005.png 20 16 100 104 7"),
                                       ("emotion code 7 is outside the label map",), skippable=True),
    "afe-cdfer-code-outside-map": Fault("afe", line("afe", afe.CDFER.lists["train"], 6,
                                                    "film_2/train_0005.png 20 16 100 104 2", layout="cd-fer"),
                                        ("emotion code 2 is outside the label map",), skippable=True),
    "rafdb-non-utf8-line": Fault("rafdb", rafdb_non_utf8_line, ("line is not UTF-8 text",), skippable=True),
    # --- malformed lines and rows ---
    **{f"rafdb-{key}": Fault("rafdb", line("rafdb", RAF_ANN, 9, text), (message,), skippable=True)
       for key, text, message in [
        ("one-field", "train_00009.jpg", "expected 2 whitespace-separated fields (image_name label), got 1"),
        ("three-fields", "train_00009.jpg 3 extra", "expected 2 whitespace-separated fields"),
        ("word-label", "train_00009.jpg five", "field 'label' must be an integer, got 'five'"),
        ("no-split-prefix", "val_00009.jpg 3", "image name 'val_00009.jpg' starts with neither `train_` nor `test_`"),
    ]},
    **{f"expw-{key}": Fault("expw", line("expw", EXPW_ANN, 3, text), (message,), skippable=True)
       for key, text, message in [
        ("seven-fields", "photo_0002.jpg 0 10 10 70 70 3", "expected 8 whitespace-separated fields"),
        ("word-top", "photo_0002.jpg 0 ten 10 70 70 0.9 3", "field 'top' must be an integer, got 'ten'"),
        ("word-face-id", "photo_0002.jpg x 10 10 70 70 0.9 3", "field 'face_id' must be an integer"),
        ("word-confidence", "photo_0002.jpg 0 10 10 70 70 high 3", "field 'confidence' must be a number, got 'high'"),
    ]},
    "afe-five-fields": Fault("afe", line("afe", AFE_TEST, 1, "film_0/test_0000.png 20 16 100 104"),
                             ("expected 6 whitespace-separated fields",), skippable=True),
    "afe-fractional-box": Fault("afe", line("afe", AFE_TEST, 1, "film_0/test_0000.png 20.5 16 100 104 3"),
                                ("field 'left' must be an integer, got '20.5'",), skippable=True),
    **{f"fer2013-{key}": Fault("fer2013", line("fer2013", FER_CSV, 7, text), (message,), skippable=True)
       for key, text, message in [
        ("two-fields", "3,1 2 3", "expected 3 comma-separated fields"),
        ("word-emotion", "three,{pixels},Training", "field 'emotion' must be an integer, got 'three'"),
        ("unknown-usage", "3,{pixels},Validation", "Usage 'Validation' is none of"),
        ("2303-pixels", "3," + " ".join(["7"] * 2303) + ",Training",
         "pixel string has 2303 values, expected 2304 (48x48)"),
        ("word-pixel", "3," + " ".join(["7"] * 2303 + ["x"]) + ",Training", "not an integer"),
        ("pixel-256", "3," + " ".join(["7"] * 2303 + ["256"]) + ",Training", "pixel values must lie in 0..255"),
    ]},
    "fer2013-icml-2305-pixels": Fault(
        "fer2013",
        line("fer2013", Path("icml_face_data.csv"), 10, "3, Training, " + " ".join(["7"] * 2305), variant="icml"),
        ("pixel string has 2305 values, expected 2304",), skippable=True),
    # --- crop boxes ---
    **{f"afe-empty-box-{i}": Fault("afe", line("afe", AFE_TRAIN, 2, f"film_1/train_0001.png {box} 3"),
                                   ("empty crop box (left, top, right, bottom)",), skippable=True)
       for i, box in enumerate(["70 10 10 70", "10 10 10 70", "10 70 70 70"])},
    "expw-empty-box": Fault("expw", line("expw", EXPW_ANN, 1, "photo_0000.jpg 0 50 10 70 40 0.9 3"),
                            ("empty crop box",), skippable=True),
    "expw-box-outside-photo": Fault("expw", line("expw", EXPW_ANN, 1, "photo_0000.jpg 0 10 500 560 70 0.9 3"),
                                    ("lies outside the 160x120 image", "photo_0000.jpg"), skippable=True),
    "afe-box-outside-image": Fault("afe", line("afe", AFE_TRAIN, 1, "film_0/train_0000.png 20 130 100 200 3"),
                                   ("lies outside the 128x128 image", "train_0000.png"), skippable=True),
}


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "home"))


def one_line_error(status: int, capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a CLI call that must have failed with status 2 (no traceback)."""
    out, err = capsys.readouterr()
    assert status == 2, f"exit status {status}; stdout {out!r}; stderr {err!r}"
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.rstrip("\n")


def location(path: Path, number: int | None) -> str:
    return f"error: {path}:{number}: " if number is not None else f"error: {path}: "


@pytest.mark.filterwarnings("ignore::datasets.prepare.EmptyClassWarning")  # a skipped test face may empty a class
@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_raw_fault(fault: Fault, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "raw"
    path, number = fault.damage(root)
    prepare = ["data", "prepare", fault.dataset, "--raw", str(root)]
    for options in [[]] if fault.skippable else [[], ["--skip-bad"]]:
        error = one_line_error(main(prepare + options), capsys)
        assert error.startswith(location(path, number)), error
        for text in fault.needs:
            assert text.format(root=root) in error, error
        assert len(error) < 600, f"{len(error)} characters"  # the FER2013 header once printed 8 KB
    assert not registry.cache_dir(fault.dataset).exists()
    if fault.skippable:
        assert main([*prepare, "--skip-bad"]) == 0, capsys.readouterr().err
        records = read_manifest(registry.cache_dir(fault.dataset))["skipped"]["records"]
        listed = {(r["file"], r["line"]) for r in records}
        assert {(str(path), n) for n in (number, *fault.also_skipped)} <= listed, records

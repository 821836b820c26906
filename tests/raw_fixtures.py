"""Tiny raw releases in the real on-disk formats (RAF-DB, FER2013, ExpW, AFE), written with PIL.

Every face is filled with its class's colour (``class_colour``; grey level ``class_grey`` for FER2013)
plus a little deterministic noise, so a test can tell from a cached image which label it must carry and
whether the right box was cropped. Labels cycle through ``classes`` (all seven by default), so every
class is present in every split when a split has at least that many samples. Deterministic by ``seed``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from datasets import afe, expw, rafdb
from datasets.labels import FER2013_TO_CANONICAL, NUM_CLASSES

ALL_CLASSES: tuple[int, ...] = tuple(range(NUM_CLASSES))
#: Noise amplitude (grey levels) added to each face's colour.
NOISE = 6
#: ExpW photo size (width, height) and its face boxes (left, top, right, bottom); the third pokes out of
#: the photo on the left and bottom, so it is clamped.
EXPW_PHOTO = (160, 120)
EXPW_BOXES = ((10, 10, 70, 70), (90, 50, 150, 110), (-10, 70, 40, 130))
#: AFE image size and face box.
AFE_IMAGE = (128, 128)
AFE_BOX = (20, 16, 100, 104)


def class_colour(label: int) -> tuple[int, int, int]:
    """The RGB fill of a face of canonical class ``label`` (distinct, saturated colours)."""
    bits = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1))[label]
    return tuple(40 + 190 * b for b in bits)  # type: ignore[return-value]


def class_grey(label: int) -> int:
    """The grey level of a FER2013 face of canonical class ``label``."""
    return 20 + 35 * label


def _labels(n: int, classes: Sequence[int], offset: int = 0) -> list[int]:
    return [classes[(i + offset) % len(classes)] for i in range(n)]


def _noisy(fill: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``fill`` (H, W, C) plus uniform noise in [-NOISE, NOISE], as uint8."""
    noise = rng.integers(-NOISE, NOISE + 1, size=fill.shape)
    return np.clip(fill.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _face(label: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    return _noisy(np.broadcast_to(np.array(class_colour(label)), (height, width, 3)), rng)


def _photo(size: tuple[int, int], faces: Sequence[tuple[tuple[int, int, int, int], int]],
           rng: np.random.Generator) -> Image.Image:
    """A black ``size`` (width, height) photo with each (box, label) face painted in its class colour."""
    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for (left, top, right, bottom), label in faces:
        left, top, right, bottom = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
        pixels[top:bottom, left:right] = _face(label, right - left, bottom - top, rng)
    return Image.fromarray(pixels)


def make_rafdb(root: Path, n_train: int = 14, n_test: int = 7, *, classes: Sequence[int] = ALL_CLASSES,
               seed: int = 0) -> dict[str, list[int]]:
    """RAF-DB basic: partition list and 100 x 100 aligned JPEGs. Returns canonical labels per split."""
    rng = np.random.default_rng(seed)
    images = root / rafdb.IMAGES
    images.mkdir(parents=True, exist_ok=True)
    expected = {"train": _labels(n_train, classes), "test": _labels(n_test, classes, offset=3)}
    lines = []
    for split, labels in expected.items():
        for i, label in enumerate(labels, start=1):
            name = f"train_{i:05d}.jpg" if split == "train" else f"test_{i:04d}.jpg"
            Image.fromarray(_face(label, 100, 100, rng)).save(images / rafdb.aligned_name(name), quality=90)
            lines.append(f"{name} {label + 1}\n")
    annotation = root / rafdb.ANNOTATION
    annotation.parent.mkdir(parents=True, exist_ok=True)
    annotation.write_text("".join(lines))
    return expected


def fer2013_pixels(label: int, rng: np.random.Generator) -> str:
    """A 2304-value pixel string of a FER2013 face of canonical class ``label``."""
    values = _noisy(np.full((48 * 48,), class_grey(label)), rng)
    return " ".join(str(v) for v in values.tolist())


def make_fer2013(root: Path, n_train: int = 14, n_test: int = 7, *, variant: str = "kaggle",
                 classes: Sequence[int] = ALL_CLASSES, seed: int = 0) -> dict[str, list[int]]:
    """FER2013 CSV, ``variant`` "kaggle" (fer2013.csv) or "icml" (icml_face_data.csv, spaced header).

    Test rows alternate PublicTest / PrivateTest. Returns canonical labels per split.
    """
    rng = np.random.default_rng(seed)
    expected = {"train": _labels(n_train, classes), "test": _labels(n_test, classes, offset=3)}
    rows = []
    for split, labels in expected.items():
        for i, label in enumerate(labels):
            usage = "Training" if split == "train" else ("PublicTest", "PrivateTest")[i % 2]
            code, pixels = FER2013_TO_CANONICAL.index(label), fer2013_pixels(label, rng)
            rows.append(f"{code},{pixels},{usage}\n" if variant == "kaggle" else f"{code}, {usage}, {pixels}\n")
    root.mkdir(parents=True, exist_ok=True)
    if variant == "kaggle":
        (root / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "".join(rows))
    elif variant == "icml":
        (root / "icml_face_data.csv").write_text(" emotion, Usage, pixels\n" + "".join(rows))
    else:
        raise ValueError(f"variant must be 'kaggle' or 'icml', got {variant!r}")
    return expected


def make_expw(root: Path, n_photos: int = 42, *, classes: Sequence[int] = ALL_CLASSES,
              seed: int = 0) -> dict[str, int]:
    """ExpW: label.lst and JPEG photos holding 1 to 3 faces each (some boxes partly off the photo).

    Photo ``p`` has faces labelled ``classes[p]``, then ``classes[p + 3]``, ``classes[p + 5]``.
    Returns ``{"<image_name>:<face_id>": canonical label}`` in annotation order.
    """
    rng = np.random.default_rng(seed)
    photos = root / expw.IMAGES
    photos.mkdir(parents=True, exist_ok=True)
    expected: dict[str, int] = {}
    lines = []
    for p in range(n_photos):
        name = f"photo_{p:04d}.jpg"
        n_faces = 1 + (p % 4 == 1) + (p % 8 == 3) * 2
        faces = [(EXPW_BOXES[f], classes[(p + (0, 3, 5)[f]) % len(classes)]) for f in range(n_faces)]
        _photo(EXPW_PHOTO, faces, rng).save(photos / name, quality=90)
        for face_id, ((left, top, right, bottom), label) in enumerate(faces):
            code = FER2013_TO_CANONICAL.index(label)
            lines.append(f"{name} {face_id} {top} {left} {right} {bottom} {0.9 - 0.1 * face_id:.3f} {code}\n")
            expected[f"{name}:{face_id}"] = label
    annotation = root / expw.ANNOTATION
    annotation.parent.mkdir(parents=True, exist_ok=True)
    annotation.write_text("".join(lines))
    return expected


def make_afe(root: Path, n_train: int = 14, n_test: int = 7, *, layout: str = "clup",
             classes: Sequence[int] = ALL_CLASSES, seed: int = 0, image: tuple[int, int] = AFE_IMAGE,
             box: tuple[int, int, int, int] = AFE_BOX) -> dict[str, list[int]]:
    """AFE in the CluP (``annos/TrainTest``) or CD-FER (``AsianMovie_0725_0730``) layout, PNG images.

    Images (``image`` = (width, height), face at ``box``) sit in per-film subfolders (the annotation path
    is relative to the image folder). Returns canonical labels per split.
    """
    spec = {"clup": afe.CLUP, "cd-fer": afe.CDFER}[layout]
    to_code = {canonical: code for code, canonical in spec.codes.items()}
    rng = np.random.default_rng(seed)
    expected = {"train": _labels(n_train, classes), "test": _labels(n_test, classes, offset=3)}
    left, top, right, bottom = box
    for split, labels in expected.items():
        lines = []
        for i, label in enumerate(labels):
            relative = f"film_{i % 3}/{split}_{i:04d}.png"
            path = root / spec.images / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            _photo(image, [(box, label)], rng).save(path)
            lines.append(f"{relative} {left} {top} {right} {bottom} {to_code[label]}\n")
        annotation = root / spec.lists[split]
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text("".join(lines))
    return expected


def set_line(path: Path, line: int, text: str) -> None:
    """Replace 1-based ``line`` of a text file (append when ``line`` is one past the end)."""
    lines = path.read_text().splitlines()
    if line == len(lines) + 1:
        lines.append(text)
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def png_bytes(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0, rows: bytes = b"") -> bytes:
    """A PNG file written by hand: signature, IHDR, one IDAT of ``rows`` (each row prefixed by filter 0), IEND.

    With empty ``rows`` it is a header without pixels: enough for Pillow's size check at ``Image.open``
    (a decompression bomb of any size costs nothing to write).
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png16(values: np.ndarray) -> bytes:
    """A 16-bit PNG of uint16 ``values``: (H, W) grey (Pillow mode ``I;16``) or (H, W, 3) RGB (48 bits a pixel)."""
    big_endian = values.astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in big_endian)
    colour_type = 0 if values.ndim == 2 else 2
    return png_bytes(values.shape[1], values.shape[0], bit_depth=16, colour_type=colour_type, rows=rows)


def assert_face_colours(images: np.ndarray, labels: np.ndarray, tolerance: float = 16.0) -> None:
    """Assert each cached face (N, H, W, C) shows its label's colour (grey for C = 1) in its centre half.

    Catches a wrong crop box, a wrong label map or images and labels out of step.
    """
    n, height, width, channels = images.shape
    centre = images[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4].reshape(n, -1, channels)
    means = centre.mean(axis=1)
    for i, (mean, label) in enumerate(zip(means, labels.tolist())):
        expected = np.array([class_grey(label)] if channels == 1 else class_colour(label), dtype=float)
        assert np.abs(mean - expected).max() <= tolerance, f"image {i}: mean {mean.round(1)}, label {label}: {expected}"

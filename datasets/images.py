"""Decoding a raw release's image file into the cache's pixels: 8 bits per channel, an optional crop box, the
cached size.

Images are resized with PIL's BILINEAR filter (PIL widens the filter support when downsampling, so it
is antialiased), the same interpolation the harness uses when it resizes the cache at load time.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.errors import DatasetError

#: A crop box in pixels: (left, top, right, bottom), right and bottom exclusive (PIL's convention).
Box = tuple[int, int, int, int]

#: Interpolation of every resize of a raw image to the cached size.
RESAMPLE = Image.Resampling.BILINEAR

_PIL_MODES = {1: "L", 3: "RGB"}
#: Pillow modes of 16-bit grey images (PNG, TIFF); scaled to 8 bits by ``_eight_bit``.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def clamp_box(box: Box, width: int, height: int) -> Box:
    """``box`` clipped to a width x height image (may come out empty)."""
    left, top, right, bottom = box
    return max(left, 0), max(top, 0), min(right, width), min(bottom, height)


def _eight_bit(image: Image.Image) -> Image.Image:
    """``image`` with 8 bits per channel: a 16-bit grey image is scaled, v -> round(v * 255 / 65535).

    Pillow itself would clip 16-bit grey to 0..255 (almost everything white); 16-bit colour PNGs already
    come out of Pillow as 8-bit RGB(A) (the high byte, within one level of the scaled value). 32-bit
    integer and float images carry no agreed range and raise ValueError.
    """
    if image.mode in _SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG"):
        wide = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((wide + 128) // 257).astype(np.uint8))
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        raise ValueError(f"unsupported pixel mode {image.mode!r} (32-bit integer or float); 8 or 16 bits expected")
    return image


def _open_image(path: Path, mode: str) -> Image.Image:
    """The decoded image in PIL ``mode``; Pillow's decompression-bomb warning (over 89 M pixels) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()
            return _eight_bit(image).convert(mode)


def load_image(
    path: Path, *, size: int, channels: int, annotation: Path, line: int | None, box: Box | None = None,
    shorter_side: bool = False,
) -> np.ndarray:
    """Open an image, crop ``box`` (clamped to the image), resize to size x size (BILINEAR).

    Args:
        path: the image file.
        size: side of the output in pixels.
        channels: 1 (grey, PIL mode L) or 3 (RGB; alpha dropped, palettes expanded, 16-bit grey scaled).
        annotation, line: the annotation record naming the image, for error messages.
        box: crop box (left, top, right, bottom) in pixels, or None for the whole image.
        shorter_side: resize the shorter side to ``size`` keeping the aspect ratio, then take the centre
            size x size (torchvision's ``Resize(size)`` then ``CenterCrop(size)``; the same as the plain resize
            for a square crop); False: resize both sides to ``size``.

    Returns:
        uint8 array (size, size, channels).

    Raises:
        DatasetError: at ``annotation:line``, naming ``path``, when the image is missing, unreadable,
        corrupt, a decompression bomb or of an unsupported pixel mode, or the clamped box is empty.
    """
    if not path.is_file():
        raise DatasetError(f"image file not found: {path}", annotation, line)
    try:
        image = _open_image(path, _PIL_MODES[channels])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}", annotation, line) from None
    if box is not None:
        clamped = clamp_box(box, image.width, image.height)
        if clamped[2] <= clamped[0] or clamped[3] <= clamped[1]:
            raise DatasetError(
                f"crop box {box} lies outside the {image.width}x{image.height} image {path}", annotation, line
            )
        image = image.crop(clamped)
    if shorter_side and image.width != image.height:
        image = _centre_crop(_resize_shorter_side(image, size), size)
    if image.size != (size, size):
        image = image.resize((size, size), RESAMPLE)
    return np.asarray(image, dtype=np.uint8).reshape(size, size, channels)


def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    """``image`` with its shorter side ``size`` (BILINEAR), the longer ``int(size * long / short)`` as
    torchvision's ``Resize(int)`` computes it."""
    width, height = image.size
    if width <= height:
        return image.resize((size, int(size * height / width)), RESAMPLE)
    return image.resize((int(size * width / height), size), RESAMPLE)


def _centre_crop(image: Image.Image, size: int) -> Image.Image:
    """The centre ``size`` x ``size`` of ``image`` (offsets rounded as torchvision's ``CenterCrop``)."""
    left, top = int(round((image.width - size) / 2.0)), int(round((image.height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))

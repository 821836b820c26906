"""Acquisition conditions: pose, background, lighting, occluders, geometric warp, blur, tone, noise.

``sample_acquisition`` draws every per-sample acquisition parameter of a split from the domain's
``CorruptionSpec``; ``draw_occluders`` paints occluders on the canonical canvas after the face;
``degrade`` turns the canonical canvas into the output images (warp to the output size with rotation,
scale and translation, directional lighting, blur, contrast/brightness/gamma, block artefacts, noise).
All steps are vectorised over the chunk. Images are float32 in [0, 1] until ``quantise``.
"""

from __future__ import annotations

import math

import numpy as np

from datasets.synth import portable, sampling
from datasets.synth.domains import DomainSpec
from datasets.synth.layout import FaceLayout, face_sdf
from datasets.synth.params import ParamTable, col, pick
from datasets.synth.shapes import Canvas, Window, coverage, rotated_ellipse, segment

#: Occluder kinds, in the order of ``CorruptionSpec.occluder_kinds`` (-1 = none).
OCCLUDERS: tuple[str, ...] = ("hand", "hair", "mask", "blob")
#: Number of background clutter blobs per sample.
CLUTTER_BLOBS = 4


def sample_acquisition(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """Per-sample acquisition parameters of ``n`` samples.

    The groups (pose, background, scene, image quality, occluder) are drawn from the one stream ``rng``
    in this order; reordering them changes the generated data.

    Returns:
        ``yaw``, ``pitch`` in [-1, 1]; ``rotation`` (radians), ``scale``, ``tx``, ``ty`` (face units);
        ``bg`` (n, 3), ``bg_grad``, ``clutter`` (n, CLUTTER_BLOBS, 6), ``shirt`` (n, 3), ``lens_tint``;
        ``light_angle`` (radians), ``light``; ``blur`` (output pixels), ``noise``, ``contrast``,
        ``brightness``, ``gamma``, ``levels`` (auto-exposure strength), ``jpeg`` (block blend in [0, 1]);
        occluder ``occ_kind`` (int, -1 none), ``occ_side`` (+-1), ``occ_x``, ``occ_y``, ``occ_size``,
        ``occ_angle``, ``occ_grey``.
    """
    a: ParamTable = {}
    a.update(_pose(spec, n, rng))
    a.update(_background(spec, n, rng))
    a.update(_scene(spec, n, rng))
    a.update(_image_quality(spec, n, rng))
    a.update(_occluder(spec, n, rng))
    return a


def _symmetric(rng: np.random.Generator, n: int, limit: float) -> np.ndarray:
    """``n`` float32 draws, uniform in [-limit, limit]."""
    return rng.uniform(-limit, limit, n).astype(np.float32)


def _in_range(rng: np.random.Generator, n: int, bounds: tuple[float, float]) -> np.ndarray:
    """``n`` float32 draws, uniform in ``bounds``."""
    return rng.uniform(bounds[0], bounds[1], n).astype(np.float32)


def _pose(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """Head turn (``yaw``, ``pitch``) and the in-plane warp (``rotation``, ``scale``, ``tx``, ``ty``)."""
    c = spec.corruption
    a: ParamTable = {}
    a["yaw"], a["pitch"] = _symmetric(rng, n, c.yaw), _symmetric(rng, n, c.pitch)
    rotation = np.clip(sampling.normal(rng, 0.0, c.rotation_deg / 2.5, n), -c.rotation_deg, c.rotation_deg)
    a["rotation"] = (rotation * (math.pi / 180.0)).astype(np.float32)
    a["scale"] = _in_range(rng, n, c.scale)
    shift = c.translate * spec.view_extent
    a["tx"], a["ty"] = _symmetric(rng, n, shift), _symmetric(rng, n, shift)
    return a


def _background(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """``bg``, ``bg_grad``, ``clutter``: a cluttered scene if the domain has clutter, else a grey studio."""
    c = spec.corruption
    if c.background_clutter > 0:
        clutter = np.zeros((n, CLUTTER_BLOBS, 6), dtype=np.float32)
        bg = rng.uniform(0.1, 0.9, (n, 3)).astype(np.float32)
        bg_grad = _symmetric(rng, n, 0.3)
        clutter[..., 0:2] = rng.uniform(-spec.render_extent, spec.render_extent, (n, CLUTTER_BLOBS, 2))
        clutter[..., 2:4] = rng.uniform(0.15, 0.7, (n, CLUTTER_BLOBS, 2))
        clutter[..., 4] = sampling.normal(rng, 0.0, c.background_clutter, (n, CLUTTER_BLOBS))
        return {"bg": bg, "bg_grad": bg_grad, "clutter": clutter}
    grey = rng.uniform(0.72, 0.92, (n, 1))
    bg = np.clip(grey + sampling.normal(rng, 0.0, 0.04, (n, 3)), 0, 1).astype(np.float32)
    bg_grad = rng.uniform(0.0, 0.08, n).astype(np.float32)
    return {"bg": bg, "bg_grad": bg_grad, "clutter": np.zeros((n, CLUTTER_BLOBS, 6), dtype=np.float32)}


def _scene(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """``shirt`` colour, glasses ``lens_tint``, directional light (``light_angle``, ``light`` strength)."""
    return {
        "shirt": rng.uniform(0.1, 0.85, (n, 3)).astype(np.float32),
        "lens_tint": rng.uniform(0.05, 0.2, n).astype(np.float32),
        "light_angle": rng.uniform(0.0, 2 * np.pi, n).astype(np.float32),
        "light": rng.uniform(0.0, spec.corruption.light_gradient, n).astype(np.float32),
    }


def _image_quality(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """``blur``, ``noise``, ``contrast``, ``brightness``, ``gamma``, ``levels``, ``jpeg``."""
    c = spec.corruption
    return {
        "blur": _in_range(rng, n, c.blur_sigma),
        "noise": _in_range(rng, n, c.noise_sigma),
        "contrast": _in_range(rng, n, c.contrast),
        "brightness": _in_range(rng, n, c.brightness),
        "gamma": sampling.log_uniform(rng, c.gamma[0], c.gamma[1], n).astype(np.float32),
        "levels": _in_range(rng, n, c.auto_levels),
        "jpeg": np.where(rng.random(n) < c.jpeg_block, rng.uniform(0.15, 0.35, n), 0.0).astype(np.float32),
    }


def _occluder(spec: DomainSpec, n: int, rng: np.random.Generator) -> ParamTable:
    """``occ_kind`` (-1 none) and the occluder's side, position, size, angle and grey level."""
    c = spec.corruption
    kind = sampling.categorical(rng, c.occluder_kinds, n)
    return {
        "occ_kind": np.where(rng.random(n) < c.occluder_prob, kind, -1).astype(np.int64),
        "occ_side": np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32),
        "occ_x": rng.uniform(0.0, 1.0, n).astype(np.float32),
        "occ_y": rng.uniform(0.0, 1.0, n).astype(np.float32),
        "occ_size": rng.uniform(0.8, 1.2, n).astype(np.float32),
        "occ_angle": rng.uniform(-0.6, 0.6, n).astype(np.float32),
        "occ_grey": rng.uniform(0.05, 0.95, n).astype(np.float32),
    }


def draw_occluders(canvas: Canvas, f: FaceLayout, ident: ParamTable, acq: ParamTable) -> None:
    """Paint at most one occluder per sample on the canonical canvas.

    Kinds: a hand (palm and four fingers, over the chin, mouth corner or cheek), a hair strand across one
    eye and brow, a face mask over nose and mouth, a random blob (microphone, sticker, shadow).

    Each kind is drawn on the samples that have it only (a sub-canvas, written back): every pixel is computed
    elementwise, so this gives the same bytes as drawing the kind over the whole chunk with zero opacity
    elsewhere, at a fraction of the cost.
    """
    kind = acq["occ_kind"]
    for index, draw in enumerate((_draw_hand, _draw_hair_strand, _draw_face_mask, _draw_blob)):
        rows = np.flatnonzero(kind == index)
        if rows.size == 0:
            continue
        sub = canvas.subset(rows)
        draw(sub, sub.full(), f.subset(rows), pick(acq, rows), pick(ident, rows))
        canvas.image[rows] = sub.image


def _draw_hand(canvas: Canvas, win: Window, f: FaceLayout, acq: ParamTable, ident: ParamTable) -> None:
    """Occluder kind 0: a palm and four fingers in the sample's ``skin`` colour (varied by ``occ_grey``), outlined."""
    side, size, angle = col(acq["occ_side"]), col(acq["occ_size"]), col(acq["occ_angle"])
    ox, oy = col(acq["occ_x"]), col(acq["occ_y"])
    cx = f.fcx + side * (0.2 + 0.4 * ox)
    cy = 0.2 + 0.45 * oy
    palm = rotated_ellipse(win.X, win.Y, cx, cy + 0.15 * size, 0.2 * size, 0.24 * size, angle)
    shape = palm
    for k in range(4):
        spread = angle + side * (k - 1.5) * 0.22
        bx = cx + 0.02 * (k - 1.5) * size
        finger = segment(win.X, win.Y, bx, cy + 0.05, bx + portable.sin(spread) * 0.33 * size,
                         cy - portable.cos(spread) * 0.33 * size, 0.045 * size)
        shape = np.minimum(shape, finger)
    on = col(acq["occ_kind"] == 0)
    skin = np.clip(ident["skin"] * (0.9 + 0.2 * acq["occ_grey"][:, None]), 0, 1)
    shade = 1.0 - 0.25 * np.clip((win.Y - cy) / 0.5, 0, 1)
    canvas.paint(win, coverage(shape - 0.012, canvas.aa) * on, skin * 0.6)
    canvas.paint(win, coverage(shape, canvas.aa) * on, skin, shade)


def _draw_hair_strand(canvas: Canvas, win: Window, f: FaceLayout, acq: ParamTable, ident: ParamTable) -> None:
    """Occluder kind 1: a textured strand of ``hair`` falling across one eye and brow."""
    side, size = col(acq["occ_side"]), col(acq["occ_size"])
    ox, oy = col(acq["occ_x"]), col(acq["occ_y"])
    x0 = f.fcx + side * (0.05 + 0.35 * ox)
    x1 = f.eye_cx + side * (f.eye_dx + 0.1 * (oy - 0.5))
    strand = segment(win.X, win.Y, x0, -1.6, x1, f.eye_y + 0.12 + 0.1 * oy, 0.05 + 0.06 * size)
    # side is +-1: two small (1, h, w) grids, chosen per sample, instead of a sine over the whole chunk.
    texture = 1.0 + 0.12 * np.where(side > 0, portable.sin(45.0 * (win.X - 0.3 * win.Y)),
                                    portable.sin(45.0 * (win.X + 0.3 * win.Y)))
    canvas.paint(win, coverage(strand, canvas.aa) * col(acq["occ_kind"] == 1), ident["hair"], texture)


def _draw_face_mask(canvas: Canvas, win: Window, f: FaceLayout, acq: ParamTable, ident: ParamTable) -> None:
    """Occluder kind 2: a folded cloth mask over the lower face, with ear straps."""
    on = col(acq["occ_kind"] == 2)
    grey = acq["occ_grey"]
    region = np.maximum(face_sdf(win.X, win.Y, f) - 0.02, (f.nose_y - 0.07) - win.Y)
    cloth = np.stack([0.55 + 0.4 * grey, 0.65 + 0.3 * grey, 0.7 + 0.3 * grey], 1)
    folds = 1.0 - 0.08 * (portable.sin(60.0 * win.Y) > 0.6)
    canvas.paint(win, coverage(region, canvas.aa) * on, np.clip(cloth, 0, 1), folds)
    for s in (-1.0, 1.0):
        strap = segment(win.X, win.Y, f.fcx + s * f.rx * 0.95, f.nose_y - 0.03, f.fcx + s * (f.rx + 0.1),
                        f.eye_y + 0.05, 0.012)
        canvas.paint(win, coverage(strap, canvas.aa) * on, np.full_like(cloth, 0.9))


def _draw_blob(canvas: Canvas, win: Window, f: FaceLayout, acq: ParamTable, ident: ParamTable) -> None:
    """Occluder kind 3: a grey rotated ellipse (microphone, sticker, shadow) anywhere near the face."""
    side, size, angle = col(acq["occ_side"]), col(acq["occ_size"]), col(acq["occ_angle"])
    ox, oy = col(acq["occ_x"]), col(acq["occ_y"])
    bx = f.fcx + side * 0.6 * ox
    by = -0.5 + 1.3 * oy
    blob = rotated_ellipse(win.X, win.Y, bx, by, 0.14 * size, 0.1 * size, angle)
    grey = np.repeat(acq["occ_grey"][:, None], 3, axis=1)
    canvas.paint(win, coverage(blob, canvas.aa) * col(acq["occ_kind"] == 3), grey)


def apply_lighting(canvas: Canvas, acq: ParamTable) -> None:
    """Directional light: a linear gain ramp across the canonical canvas (in place)."""
    if not np.any(acq["light"] > 0):
        return
    win = canvas.full()
    angle = col(acq["light_angle"])
    ramp = (portable.cos(angle) * win.X + portable.sin(angle) * win.Y) / canvas.extent
    gain = np.clip(1.0 + col(acq["light"]) * ramp, 0.25, 2.0)
    canvas.image *= gain[..., None]


def warp(canvas: Canvas, acq: ParamTable, out_size: int, view_extent: float) -> np.ndarray:
    """Resample the canonical canvas to the output frame with per-sample rotation, scale and translation.

    The output pixel at frame point ``o`` (face units, ``[-view_extent, view_extent]``) shows canonical
    point ``R(-rotation) (o - t) / scale`` (bilinear, edge-clamped).

    Returns:
        (n, out_size, out_size, C) float32.
    """
    n, size, channels = canvas.n, canvas.size, canvas.channels
    grid = ((np.arange(out_size, dtype=np.float32) + 0.5) / out_size * 2.0 - 1.0) * view_extent
    xo, yo = grid.reshape(1, 1, -1), grid.reshape(1, -1, 1)
    cos, sin = col(portable.cos(acq["rotation"])), col(portable.sin(acq["rotation"]))
    scale = col(acq["scale"])
    dx, dy = xo - col(acq["tx"]), yo - col(acq["ty"])
    xc = (cos * dx + sin * dy) / scale
    yc = (-sin * dx + cos * dy) / scale
    fx = np.clip((xc + canvas.extent) / canvas.px - 0.5, 0.0, size - 1.0)
    fy = np.clip((yc + canvas.extent) / canvas.px - 0.5, 0.0, size - 1.0)
    x0 = np.minimum(np.floor(fx).astype(np.int64), size - 2)
    y0 = np.minimum(np.floor(fy).astype(np.int64), size - 2)
    wx = (fx - x0)[..., None]
    wy = (fy - y0)[..., None]
    flat = canvas.image.reshape(n * size * size, channels)
    base = (np.arange(n, dtype=np.int64) * size * size).reshape(n, 1, 1)
    i00 = base + y0 * size + x0
    top = flat[i00] * (1 - wx) + flat[i00 + 1] * wx
    bottom = flat[i00 + size] * (1 - wx) + flat[i00 + size + 1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def gaussian_blur(images: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur of (n, S, S, C) images with per-sample ``sigma`` (pixels; <= 0.05 = identity).

    Taps reach ``ceil(3.5 * max sigma)`` pixels and sum to 1 per sample; edges are replicated. Each pass is a
    fixed sequence of shifted multiply-adds, not a matrix product: BLAS picks its kernel (and rounding) per CPU.
    """
    if not np.any(sigma > 0.05):
        return images
    radius = math.ceil(3.5 * float(np.max(sigma)))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    s = np.maximum(sigma, 0.05).astype(np.float64)[:, None]
    taps = portable.exp(-portable.square(offsets)[None, :] / (2.0 * portable.square(s)))
    taps = (taps / portable.fixed_sum(taps, 1, keepdims=True)).astype(np.float32)  # (n, 2 radius + 1)
    return _blur_axis(_blur_axis(images, taps, 1), taps, 2)


def _blur_axis(images: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Convolve (n, S, S, C) ``images`` along ``axis`` (1 rows, 2 columns) with per-sample ``taps`` (n, 2r + 1)."""
    radius = taps.shape[1] // 2
    size = images.shape[axis]
    pad = [(0, 0)] * images.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(images, pad, mode="edge")
    out = np.zeros_like(images)
    for k in range(taps.shape[1]):
        window = padded[:, k : k + size] if axis == 1 else padded[:, :, k : k + size]
        out += taps[:, k].reshape(-1, 1, 1, 1) * window
    return out


def auto_levels(images: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Blend (n, S, S, C) images with their 2nd-98th percentile stretch to [0.05, 0.95] by ``strength`` (n,)."""
    if not np.any(strength > 0):
        return images
    n = images.shape[0]
    lo, hi = portable.percentiles(images.reshape(n, -1), (2.0, 98.0))
    lo, hi = lo.reshape(n, 1, 1, 1), hi.reshape(n, 1, 1, 1)
    stretched = (images - lo) / np.maximum(hi - lo, 0.05) * 0.9 + 0.05
    a = strength.reshape(n, 1, 1, 1)
    return (images * (1 - a) + stretched * a).astype(np.float32)


def block_artefacts(images: np.ndarray, strength: np.ndarray, block: int = 8) -> np.ndarray:
    """Blend each image with its ``block`` x ``block`` block means by ``strength`` (a JPEG stand-in)."""
    if not np.any(strength > 0):
        return images
    n, size, _, channels = images.shape
    k = size // block
    core = images[:, : k * block, : k * block]
    means = portable.fixed_mean(core.reshape(n, k, block, k, block, channels), (2, 4), keepdims=True)
    blocky = np.broadcast_to(means, (n, k, block, k, block, channels)).reshape(n, k * block, k * block, channels)
    out = images.copy()
    a = strength.reshape(n, 1, 1, 1)
    out[:, : k * block, : k * block] = core * (1 - a) + blocky * a
    return out


def degrade(canvas: Canvas, acq: ParamTable, spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    """Canonical canvas -> output images (float32 (n, S, S, C)) under the acquisition conditions.

    Order: lighting, warp (rotation, scale, translation, resampling to ``spec.image_size``), blur,
    contrast and brightness, gamma, auto-exposure, block artefacts, the negative (``spec.corruption.negative``),
    additive Gaussian noise.
    """
    apply_lighting(canvas, acq)
    identity_warp = (
        spec.render_size == spec.image_size
        and spec.render_extent == spec.view_extent
        and not np.any(acq["rotation"])
        and np.all(acq["scale"] == 1)
        and not np.any(acq["tx"])
        and not np.any(acq["ty"])
    )
    images = canvas.image if identity_warp else warp(canvas, acq, spec.image_size, spec.view_extent)
    images = gaussian_blur(images, acq["blur"])
    mean = portable.fixed_mean(images, (1, 2, 3), keepdims=True)
    images = mean + col(acq["contrast"])[..., None] * (images - mean) + col(acq["brightness"])[..., None]
    if np.any(acq["gamma"] != 1):
        images = portable.power(np.clip(images, 0.0, 1.0), col(acq["gamma"])[..., None])
    images = auto_levels(images, acq["levels"])
    images = block_artefacts(images, acq["jpeg"])
    if spec.corruption.negative:
        images = 1.0 - np.clip(images, 0.0, 1.0)
    if np.any(acq["noise"] > 0):
        noise = sampling.standard_normal(rng, images.shape, np.float32)
        images = images + noise * col(acq["noise"])[..., None]
    return images


def quantise(images: np.ndarray) -> np.ndarray:
    """float [0, 1] images -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)

"""Vectorised implicit-shape rasterisation: a canvas, signed distances, anti-aliased coverage, compositing.

Shapes are signed distance functions (negative inside, in face units) evaluated on pixel-centre grids
broadcast against per-sample parameters of shape (n, 1, 1): a shape costs a few numpy operations on
(n, h, w) arrays, never a Python loop over pixels or samples. Each feature is evaluated only inside a
window (a rectangle of the canvas covering that feature in every sample of the chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synth import portable

#: ITU-R BT.601 luma weights used to render grey domains directly in one channel.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Window:
    """A rectangle of the canvas.

    Attributes:
        rows, cols: slices of the canvas's pixel rows and columns.
        X: (1, 1, w) x of the pixel centres, face units.
        Y: (1, h, 1) y of the pixel centres, face units (down is positive).
    """

    rows: slice
    cols: slice
    X: np.ndarray
    Y: np.ndarray


class Canvas:
    """A batch of ``n`` square images of ``size`` pixels spanning ``[-extent, extent]`` face units.

    Attributes:
        image: (n, size, size, channels) float32 in [0, 1] (values may leave the range until quantised).
        px: pixel size in face units.
        aa: half-width of the anti-aliasing ramp in face units (about one pixel).
    """

    def __init__(self, n: int, size: int, extent: float, channels: int) -> None:
        self.n, self.size, self.extent, self.channels = n, size, extent, channels
        self.px = 2.0 * extent / size
        self.aa = 0.6 * self.px
        self.coords = ((np.arange(size, dtype=np.float32) + 0.5) * self.px - extent).astype(np.float32)
        self.image = np.zeros((n, size, size, channels), dtype=np.float32)

    def subset(self, rows: np.ndarray) -> "Canvas":
        """A canvas holding a copy of the images of samples ``rows`` (write ``image`` back to keep its paint)."""
        sub = Canvas(len(rows), self.size, self.extent, self.channels)
        sub.image = self.image[rows]
        return sub

    def full(self) -> Window:
        """The whole canvas."""
        return self.window(-self.extent, self.extent, -self.extent, self.extent)

    def window(self, x0: np.ndarray | float, x1: np.ndarray | float, y0: np.ndarray | float,
               y1: np.ndarray | float) -> Window:
        """The smallest pixel rectangle covering ``[min x0, max x1] x [min y0, max y1]`` (clipped to the canvas)."""
        def index(value: float) -> int:
            return int(np.clip(np.floor((value + self.extent) / self.px), 0, self.size))

        c0, c1 = index(float(np.min(x0))), index(float(np.max(x1))) + 1
        r0, r1 = index(float(np.min(y0))), index(float(np.max(y1))) + 1
        c1, r1 = min(max(c1, c0 + 1), self.size), min(max(r1, r0 + 1), self.size)
        c0, r0 = min(c0, c1 - 1), min(r0, r1 - 1)
        return Window(
            rows=slice(r0, r1),
            cols=slice(c0, c1),
            X=self.coords[c0:c1].reshape(1, 1, -1),
            Y=self.coords[r0:r1].reshape(1, -1, 1),
        )

    def colour(self, rgb: np.ndarray) -> np.ndarray:
        """(n, 3) or (n, h, w, 3) RGB -> the canvas's channels, broadcastable to (n, h, w, C)."""
        rgb = np.asarray(rgb, dtype=np.float32)
        if rgb.ndim == 2:
            rgb = rgb[:, None, None, :]
        if self.channels == 1:
            return luma(rgb)[..., None]
        return rgb

    def paint(self, win: Window, alpha: np.ndarray, rgb: np.ndarray, shade: np.ndarray | None = None) -> None:
        """Composite ``rgb`` (optionally times ``shade``) over the window with per-pixel opacity ``alpha``.

        Args:
            win: the window the arrays are evaluated on.
            alpha: (n, h, w) opacity in [0, 1] (broadcastable).
            rgb: (n, 3) colours, or (n, h, w, 3).
            shade: optional (n, h, w) multiplier of the colour (shading, texture).
        """
        region = self.image[:, win.rows, win.cols]
        colour = self.colour(rgb)
        if shade is not None:
            colour = colour * shade[..., None]
        alpha = np.broadcast_to(alpha, region.shape[:3])[..., None]
        region += alpha * (colour - region)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (...) BT.601 luma, as three products added left to right (a matrix product would let BLAS
    choose the rounding per CPU)."""
    return rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]


def coverage(sdf: np.ndarray, aa: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a signed distance (smoothstep over ``[-aa, aa]``)."""
    t = np.clip(0.5 - sdf * (0.5 / aa), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def ellipse(X: np.ndarray, Y: np.ndarray, cx: np.ndarray, cy: np.ndarray, rx: np.ndarray,
            ry: np.ndarray) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact on the axes, good near the edge)."""
    dx = (X - cx) / rx
    dy = (Y - cy) / ry
    k0 = np.sqrt(dx * dx + dy * dy)
    k1 = np.sqrt(portable.square(dx / rx) + portable.square(dy / ry))
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def rotated_ellipse(X: np.ndarray, Y: np.ndarray, cx: np.ndarray, cy: np.ndarray, rx: np.ndarray,
                    ry: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Signed distance to an ellipse rotated by ``angle`` radians (counter-clockwise on screen)."""
    c, s = portable.cos(angle), portable.sin(angle)
    u = (X - cx) * c - (Y - cy) * s
    v = (X - cx) * s + (Y - cy) * c
    return ellipse(u, v, 0.0, 0.0, rx, ry)


def segment(X: np.ndarray, Y: np.ndarray, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray,
            half_width: np.ndarray | float) -> np.ndarray:
    """Signed distance to a line segment A-B thickened to ``half_width`` (a capsule)."""
    px, py = X - ax, Y - ay
    bax, bay = bx - ax, by - ay
    h = np.clip((px * bax + py * bay) / np.maximum(bax * bax + bay * bay, 1e-8), 0.0, 1.0)
    dx, dy = px - bax * h, py - bay * h
    return np.sqrt(dx * dx + dy * dy) - half_width


def rounded_box(X: np.ndarray, Y: np.ndarray, cx: np.ndarray, cy: np.ndarray, hx: np.ndarray, hy: np.ndarray,
                radius: np.ndarray | float) -> np.ndarray:
    """Signed distance to a box of half-sizes (hx, hy) with corners rounded by ``radius``."""
    qx = np.abs(X - cx) - hx + radius
    qy = np.abs(Y - cy) - hy + radius
    outside = np.sqrt(portable.square(np.maximum(qx, 0.0)) + portable.square(np.maximum(qy, 0.0)))
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - radius

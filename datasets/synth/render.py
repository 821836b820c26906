"""The face rasteriser: draws a chunk of faces (identity + expression + pose) on a ``Canvas``.

Painter's order: background, back hair, neck and shirt, ears, face (shaded skin), forehead wrinkles,
eye sockets, brows, glabella furrows, eyes, cheeks and crow's feet, nose, nasolabial folds, mouth,
facial hair, front hair, glasses. Every feature is an implicit shape evaluated on a window of the
canvas for the whole chunk at once. This module draws the head, hair and accessories and runs the
order; the inner features between the face's skin and the facial hair are in ``features``, the feature
positions (``FaceLayout``, pose included) in ``layout``.
"""

from __future__ import annotations

import numpy as np

from datasets.synth import portable
from datasets.synth.features import (
    draw_brows,
    draw_cheeks,
    draw_eyes,
    draw_forehead,
    draw_mouth,
    draw_nasolabial,
    draw_nose,
)
from datasets.synth.layout import SIDES, FaceLayout, face_sdf, scaled, soft
from datasets.synth.params import ParamTable, col
from datasets.synth.shapes import Canvas, coverage, ellipse, rounded_box, segment


def draw_background(canvas: Canvas, acq: ParamTable) -> None:
    """Studio or cluttered background.

    ``acq`` holds ``bg`` (n, 3) base colour, ``bg_grad`` (n,) vertical gradient, and ``clutter``
    (n, k, 6): k blobs as (cx, cy, rx, ry, grey offset, unused) drawn as soft ellipses.
    """
    win = canvas.full()
    shade = 1.0 - col(acq["bg_grad"]) * win.Y * np.ones_like(win.X)
    canvas.image[:] = canvas.colour(acq["bg"]) * shade[..., None]
    clutter = acq["clutter"]
    for k in range(clutter.shape[1]):
        blob = clutter[:, k]
        if not np.any(blob[:, 4] != 0):
            continue
        sdf = ellipse(win.X, win.Y, col(blob[:, 0]), col(blob[:, 1]), col(blob[:, 2]), col(blob[:, 3]))
        alpha = soft(sdf, 0.15) * col(np.abs(blob[:, 4]) > 0)
        target = np.clip(acq["bg"] + blob[:, 4:5], 0, 1)
        canvas.paint(win, alpha, target)


def _hair_texture(win_x: np.ndarray, win_y: np.ndarray, phase: np.ndarray | float) -> np.ndarray:
    """Streaks of (1, h, w) grids ``win_x``, ``win_y`` shifted by a per-sample ``phase`` ((n, 1, 1) or scalar)."""
    waves = portable.sin_of_sum(38.0 * win_x + 9.0 * win_y, np.asarray(phase, dtype=np.float32))
    return 1.0 + 0.09 * waves + 0.05 * portable.sin(71.0 * win_x - 5.0 * win_y)


def draw_back_hair(canvas: Canvas, f: FaceLayout, ident: ParamTable) -> None:
    """Hair behind the head: down to the jaw (medium) or below the frame (long)."""
    style = ident["hair_style"]
    reach = np.where(style == 2, 2.5, np.where(style == 1, ident["mouth_y"] + 0.15, -9.0)).astype(np.float32)
    if np.all(reach < -5):
        return
    vol = col(ident["hair_volume"])
    win = canvas.window(-canvas.extent, canvas.extent, -canvas.extent, canvas.extent)
    top = ellipse(win.X, win.Y, f.fcx, f.fcy - 0.04, f.rx + vol, f.ry + 1.4 * vol)
    body = rounded_box(win.X, win.Y, f.fcx, (f.fcy + col(reach)) / 2, f.rx + vol, (col(reach) - f.fcy) / 2, 0.08)
    alpha = coverage(np.minimum(top, body), canvas.aa) * col(reach > -5)
    shade = _hair_texture(win.X, win.Y, col(ident["fringe_x"]) * 10) * 0.8
    canvas.paint(win, alpha, ident["hair"], shade)


def draw_neck_and_ears(canvas: Canvas, f: FaceLayout, ident: ParamTable, acq: ParamTable) -> None:
    """Shirt, neck (shaded skin) and ears."""
    skin = ident["skin"]
    win = canvas.window(-canvas.extent, canvas.extent, f.fcy, canvas.extent)
    shirt = ellipse(win.X, win.Y, f.fcx * 0.5, f.fcy + f.ry + 0.75, 1.4, 0.62)
    canvas.paint(win, coverage(shirt, canvas.aa), acq["shirt"])
    neck = np.maximum(np.abs(win.X - f.fcx * 0.5) - f.rx * 0.55, f.fcy + 0.2 - win.Y)
    canvas.paint(win, coverage(neck, canvas.aa) * (1.0 - coverage(shirt, canvas.aa)), scaled(skin, 0.78))
    ear_y = f.eye_y + 0.1
    win = canvas.window(-canvas.extent, canvas.extent, ear_y - 0.16, ear_y + 0.16)
    for s in SIDES:
        ex = f.fcx + s * (f.rx - 0.03) - 0.05 * f.yaw
        canvas.paint(win, coverage(ellipse(win.X, win.Y, ex, ear_y, 0.075, 0.14), canvas.aa), scaled(skin, 0.9))
        inner = ellipse(win.X, win.Y, ex + s * 0.012, ear_y, 0.035, 0.085)
        canvas.paint(win, 0.5 * coverage(inner, canvas.aa), scaled(skin, 0.65))



def draw_face_base(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> tuple:
    """Shaded skin of the face; returns (window, face signed distance) for later masks."""
    win = canvas.window(f.fcx - f.rx - 0.02, f.fcx + f.rx + 0.02, f.fcy - f.ry - 0.02, f.fcy + f.ry + 0.02)
    sdf = face_sdf(win.X, win.Y, f)
    t = np.clip((win.Y - f.fcy) / f.ry, 0.0, 1.0)
    rx = f.rx * (1.0 - f.jaw * t * t)
    r = np.sqrt(portable.square((win.X - f.fcx) / rx) + portable.square((win.Y - f.fcy) / f.ry))
    shade = 1.0 - 0.28 * portable.square(np.clip((r - 0.62) / 0.38, 0.0, 1.0)) - 0.03 * win.Y
    canvas.paint(win, coverage(sdf, canvas.aa), ident["skin"], shade)
    return win, sdf


def draw_facial_hair(canvas: Canvas, f: FaceLayout, ident: ParamTable, face_win, face: np.ndarray,
                     mouth_win, lip_cov: np.ndarray) -> None:
    """Moustache (over the upper lip) and beard (lower face, the lips left clear)."""
    hair = ident["hair"]
    beard = col(ident["beard"])
    if np.any(ident["beard"] > 0):
        top = f.nose_y + 0.1 - 0.45 * portable.square(face_win.X - f.fcx)
        region = np.maximum(face, top - face_win.Y)
        alpha = coverage(region, canvas.aa) * beard * 0.7
        rows = slice(mouth_win.rows.start - face_win.rows.start, mouth_win.rows.stop - face_win.rows.start)
        cols = slice(mouth_win.cols.start - face_win.cols.start, mouth_win.cols.stop - face_win.cols.start)
        alpha = np.array(np.broadcast_to(alpha, (canvas.n, *alpha.shape[1:])))
        alpha[:, rows, cols] *= 1.0 - lip_cov
        canvas.paint(face_win, alpha, scaled(hair, 0.8), _hair_texture(face_win.X, face_win.Y * 3, 0.0))
    if np.any(ident["moustache"] > 0):
        win = canvas.window(f.mouth_x - 0.35, f.mouth_x + 0.35, f.nose_y, f.mouth_y + 0.05)
        sdf = ellipse(win.X, win.Y, f.mouth_x, f.mouth_y - col(ident["lip_up"]) - 0.035, f.mouth_w * 1.08, 0.04)
        sdf = np.maximum(sdf, f.nose_y + 0.035 - win.Y)
        canvas.paint(win, coverage(sdf, canvas.aa) * col(ident["moustache"]), scaled(hair, 0.75),
                     _hair_texture(win.X, win.Y * 3, 1.0))


def draw_front_hair(canvas: Canvas, f: FaceLayout, ident: ParamTable) -> None:
    """Hair over the forehead and temples: a cap above a hairline, side locks, an optional fringe."""
    style = ident["hair_style"]
    vol = col(ident["hair_volume"] * np.where(style == 0, 0.5, np.where(style == 4, 0.3, 1.0)))
    hairline = col(np.where(style == 4, -3.0, ident["hairline"]))
    side_end = col(np.select([style == 0, style == 1, style == 2, style == 3],
                             [ident["eye_y"] + 0.02, ident["mouth_y"], np.full_like(ident["eye_y"], 2.5),
                              ident["eye_y"] + 0.05], ident["eye_y"] + 0.08))
    win = canvas.window(f.fcx - f.rx - 0.25, f.fcx + f.rx + 0.25, -canvas.extent, canvas.extent)
    dx = (win.X - f.fcx) / f.rx
    y_line = hairline + 0.55 * dx * dx
    brow_top = f.brow_y - 0.045
    depth = col(ident["fringe"]) * (brow_top - hairline)
    fringe = hairline + depth * portable.exp(-portable.square((win.X - f.fcx - col(ident["fringe_x"])) / 0.42))
    y_line = np.where(col(style == 3), np.maximum(y_line, fringe), y_line)
    outer = ellipse(win.X, win.Y, f.fcx, f.fcy - 0.04, f.rx + vol, f.ry + 1.4 * vol)
    outer = np.where(col(style == 2), np.minimum(outer, np.maximum(np.abs(win.X - f.fcx) - f.rx - vol,
                                                                   f.fcy - win.Y)), outer)
    cap = win.Y - y_line
    sides = np.maximum(f.rx * 0.9 - np.abs(win.X - f.fcx), win.Y - side_end)
    sdf = np.maximum(outer, np.minimum(cap, sides))
    shade = _hair_texture(win.X, win.Y, col(ident["fringe_x"]) * 10)
    canvas.paint(win, coverage(sdf, canvas.aa), ident["hair"], shade)


def draw_glasses(canvas: Canvas, f: FaceLayout, ident: ParamTable, acq: ParamTable) -> None:
    """Spectacle frames (round or rectangular), bridge and temples; the lens tint comes from ``acq``."""
    on = col(ident["glasses"])
    if not np.any(ident["glasses"] > 0):
        return
    win = canvas.window(f.fcx - f.rx - 0.05, f.fcx + f.rx + 0.05, f.eye_y - 0.16, f.eye_y + 0.16)
    radius = 0.03 + 0.06 * col(ident["glasses_round"])
    frame = ident["frame"]
    tint = col(acq["lens_tint"])
    for s in SIDES:
        scale = 1.0 - 0.22 * s * f.yaw
        cx = f.eye_cx + s * f.eye_dx * (1.0 - 0.1 * s * f.yaw)
        box = rounded_box(win.X, win.Y, cx, f.eye_y + 0.01, f.eye_w * 1.3 * scale, 0.095, radius)
        canvas.paint(win, coverage(box, canvas.aa) * on * tint, np.full_like(frame, 0.05))
        ring = np.abs(box) - 0.011
        canvas.paint(win, coverage(ring, canvas.aa) * on, frame)
        arm_x0 = cx + s * f.eye_w * 1.3 * scale
        arm = segment(win.X, win.Y, arm_x0, f.eye_y - 0.03, f.fcx + s * f.rx, f.eye_y - 0.04, 0.009)
        canvas.paint(win, coverage(arm, canvas.aa) * on, frame)
    inner = f.eye_dx - f.eye_w * 1.3
    bridge = segment(win.X, win.Y, f.eye_cx - inner, f.eye_y - 0.03, f.eye_cx + inner, f.eye_y - 0.03, 0.01)
    canvas.paint(win, coverage(bridge, canvas.aa) * on, frame)


def draw_faces(canvas: Canvas, ident: ParamTable, geo: ParamTable, acq: ParamTable) -> FaceLayout:
    """Draw one chunk of faces on ``canvas`` (background included); returns their layout for occluders."""
    f = FaceLayout(ident, geo, acq)
    draw_background(canvas, acq)
    draw_back_hair(canvas, f, ident)
    draw_neck_and_ears(canvas, f, ident, acq)
    face_win, face = draw_face_base(canvas, f, ident, geo)
    draw_forehead(canvas, f, ident, geo)
    draw_brows(canvas, f, ident, geo)
    draw_eyes(canvas, f, ident, geo)
    draw_cheeks(canvas, f, ident, geo)
    draw_nose(canvas, f, ident, geo)
    draw_nasolabial(canvas, f, ident, geo)
    mouth_win, lip_cov = draw_mouth(canvas, f, ident, geo)
    draw_facial_hair(canvas, f, ident, face_win, face, mouth_win, lip_cov)
    draw_front_hair(canvas, f, ident)
    draw_glasses(canvas, f, ident, acq)
    return f

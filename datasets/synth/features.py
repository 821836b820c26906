"""The inner, expression-bearing facial features, drawn over the face's skin by ``render.draw_faces``.

Forehead wrinkles, brows (with eye-socket shadows and glabella furrows), eyes, cheeks and crow's feet,
nose, nasolabial folds and mouth: the features the FACS-like action units (``expressions``) move. Each is
an implicit shape evaluated on a window of the canvas for the whole chunk at once.
"""

from __future__ import annotations

import numpy as np

from datasets.synth import portable
from datasets.synth.layout import SIDES, FaceLayout, scaled, soft
from datasets.synth.params import ParamTable, col
from datasets.synth.shapes import Canvas, coverage, ellipse, segment

_DARK_LINE = 0.55  # colour multiplier of skin creases
_CAVITY = np.array([0.13, 0.04, 0.04], dtype=np.float32)
_TEETH = np.array([0.93, 0.91, 0.86], dtype=np.float32)
_SCLERA = np.array([0.94, 0.93, 0.91], dtype=np.float32)


def draw_forehead(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Horizontal forehead wrinkles (AU1/AU2 and age)."""
    strength = np.clip(0.55 * geo["forehead"] + 0.2 * np.clip(ident["age"] - 0.35, 0, 1), 0, 0.75)
    if not np.any(strength > 0.02):
        return
    top = f.brow_y - 0.1 + col(geo["brow_out_dy"])
    win = canvas.window(f.fcx - 0.35, f.fcx + 0.35, top - 0.22, top + 0.02)
    dark = scaled(ident["skin"], _DARK_LINE)
    for k in range(3):
        yk = top - 0.065 * k + 0.35 * portable.square(win.X - f.fcx)
        half = 0.26 - 0.04 * k
        sdf = np.maximum(np.abs(win.Y - yk) - 0.009, np.abs(win.X - f.fcx) - half)
        fade = np.clip(1.0 - portable.square((win.X - f.fcx) / half), 0, 1)
        canvas.paint(win, coverage(sdf, canvas.aa) * fade * col(strength), dark)


def draw_brows(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Eyebrows as tapered bands between an inner and an outer end (AU1, AU2, AU4 move the ends)."""
    thick = col(ident["brow_thick"])
    arch = col(ident["brow_arch"])
    rest = col(ident["rest_brow"])
    in_dy, out_dy, in_dx = col(geo["brow_in_dy"]), col(geo["brow_out_dy"]), col(geo["brow_in_dx"])
    win = canvas.window(f.brow_cx - 0.7, f.brow_cx + 0.7, f.brow_y - 0.2, f.brow_y + 0.14)
    for s in SIDES:  # eye-socket shadow under the brow
        socket = ellipse(win.X, win.Y, f.eye_cx + s * f.eye_dx, f.eye_y - 0.035, f.eye_w * 1.35, 0.085)
        canvas.paint(win, 0.16 * soft(socket, 0.06), scaled(ident["skin"], 0.7))
    for s in SIDES:
        far = 1.0 - 0.2 * s * f.yaw
        x_in = f.brow_cx + s * (f.eye_dx - f.eye_w * 0.95 - in_dx) * far
        x_out = f.brow_cx + s * (f.eye_dx + f.eye_w * 1.25) * far
        y_in = np.minimum(f.brow_y + 0.01 + in_dy + rest * s * 0.5 - rest, f.eye_y - f.eye_h - thick * 0.5)
        y_out = np.minimum(f.brow_y - 0.005 + out_dy + rest, f.eye_y - f.eye_h - thick * 0.3)
        v = (win.X - x_in) / (x_out - x_in)
        vc = np.clip(v, 0.0, 1.0)
        yc = y_in + (y_out - y_in) * vc - arch * 4.0 * vc * (1.0 - vc)
        half = thick * (0.62 - 0.3 * vc)
        length = np.abs(x_out - x_in)
        sdf = np.maximum(np.abs(win.Y - yc) - half, np.maximum(-v, v - 1.0) * length)
        canvas.paint(win, coverage(sdf, canvas.aa), ident["brow"])
    # Glabella furrows (AU4): short vertical creases between the inner brow ends.
    strength = 0.75 * geo["furrow"]
    if np.any(strength > 0.02):
        dark = scaled(ident["skin"], _DARK_LINE)
        y0 = f.brow_y + in_dy - 0.01
        for s in SIDES:
            x = f.brow_cx + s * 0.035
            sdf = segment(win.X, win.Y, x, y0 - 0.02, x + s * 0.008, y0 + 0.07, 0.01)
            canvas.paint(win, coverage(sdf, canvas.aa) * col(strength), dark)


def draw_eyes(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Almond eyes: sclera, iris and pupil clipped to the lids, lash line, lid crease, lower-lid line.

    AU5 raises the upper lid (white above the iris), AU6/AU7 narrow the eye from below and above, AU43
    droops the upper lid and the outer corner.
    """
    lid_up, lid_lo = col(geo["lid_up"]), col(geo["lid_lo"])
    droop = col(geo["eye_droop"])
    tilt = col(ident["eye_tilt"])
    iris_r = f.eye_h * 1.08
    win = canvas.window(f.eye_cx - f.eye_dx - 0.25, f.eye_cx + f.eye_dx + 0.25, f.eye_y - 0.2, f.eye_y + 0.12)
    skin = ident["skin"]
    for s in SIDES:
        scale = 1.0 - 0.22 * s * f.yaw
        ex = f.eye_cx + s * f.eye_dx * (1.0 - 0.1 * s * f.yaw)
        ew = f.eye_w * scale
        u = (win.X - ex) / ew
        uc = np.clip(u, -1.0, 1.0)
        outer = uc * s
        yc = f.eye_y - (tilt - droop) * outer
        bulge = portable.power(1.0 - uc * uc, 0.7)
        hu = f.eye_h * lid_up
        hl = f.eye_h * 0.72 * lid_lo
        y_top = yc - hu * bulge * (1.0 - 0.12 * outer)
        y_bot = yc + hl * bulge
        white = np.maximum(np.maximum(y_top - win.Y, win.Y - y_bot), (np.abs(u) - 1.0) * ew)
        canvas.paint(win, coverage(white, canvas.aa), _SCLERA[None, :] * np.ones_like(skin) * 0.97)
        ix = ex + col(ident["gaze"]) * ew * 0.3
        iris = np.maximum(ellipse(win.X, win.Y, ix, f.eye_y + 0.004, iris_r * scale, iris_r), white)
        canvas.paint(win, coverage(iris, canvas.aa), ident["iris"])
        pupil = np.maximum(ellipse(win.X, win.Y, ix, f.eye_y + 0.004, iris_r * 0.45 * scale, iris_r * 0.45), white)
        canvas.paint(win, coverage(pupil, canvas.aa), np.full_like(skin, 0.04))
        glint = ellipse(win.X, win.Y, ix - 0.3 * iris_r, f.eye_y - 0.3 * iris_r, 0.011, 0.011)
        canvas.paint(win, 0.8 * coverage(np.maximum(glint, white), canvas.aa), np.full_like(skin, 0.97))
        # Lash line along the upper lid, extended past the outer corner.
        lash = np.maximum(np.abs(win.Y - y_top + 0.004) - 0.011, (np.abs(u) - 1.06) * ew)
        canvas.paint(win, coverage(lash, canvas.aa), np.full_like(skin, 0.08))
        # Lower lid line.
        low = np.maximum(np.abs(win.Y - y_bot - 0.003) - 0.006, (np.abs(u) - 1.0) * ew)
        canvas.paint(win, 0.45 * coverage(low, canvas.aa), scaled(skin, 0.55))
        # Upper-lid crease: stays where the relaxed lid is; visible lid skin grows when the lid droops.
        crease_y = yc - f.eye_h * bulge * 1.0 - 0.032 - 0.025 * np.clip(lid_up - 1.0, 0, None)
        crease = np.maximum(np.abs(win.Y - crease_y) - 0.006, (np.abs(u) - 0.95) * ew)
        canvas.paint(win, 0.4 * coverage(crease, canvas.aa), scaled(skin, 0.6))
        # Lower-lid bulge (AU6/AU7 raise the lower lid and bunch the skin under it).
        bag = np.maximum(np.abs(win.Y - y_bot - 0.035) - 0.006, (np.abs(u) - 0.8) * ew)
        strength = np.clip(0.55 * geo["cheek"] + 0.45 * (1.0 - geo["lid_lo"]) + 0.15 * ident["age"], 0, 0.8)
        canvas.paint(win, coverage(bag, canvas.aa) * col(strength), scaled(skin, 0.65))


def draw_cheeks(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Cheek raise (AU6): raised, lit cheek bulges and crow's-feet lines at the outer eye corners."""
    cheek = geo["cheek"]
    age = ident["age"]
    strength = np.clip(0.7 * cheek + 0.15 * np.clip(age - 0.4, 0, 1), 0, 1)
    if not np.any(strength > 0.02):
        return
    win = canvas.window(f.eye_cx - f.eye_dx - 0.3, f.eye_cx + f.eye_dx + 0.3, f.eye_y - 0.1, f.eye_y + 0.32)
    blush = np.clip(ident["skin"] * 1.06 + np.array([0.04, -0.01, -0.01]), 0, 1)
    dark = scaled(ident["skin"], _DARK_LINE)
    for s in SIDES:
        ex = f.eye_cx + s * f.eye_dx
        bump = ellipse(win.X, win.Y, ex + s * 0.03, f.eye_y + 0.19 - 0.04 * col(cheek), 0.13, 0.075)
        canvas.paint(win, 0.45 * soft(bump, 0.06) * col(cheek), blush)
        corner = ex + s * (f.eye_w + 0.025)
        for k, angle in enumerate((-0.45, 0.0, 0.45)):
            ax, ay = corner, f.eye_y + 0.01 * k
            bx, by = corner + s * 0.06 * float(portable.cos(angle)), ay + 0.06 * float(portable.sin(angle))
            sdf = segment(win.X, win.Y, ax, ay, bx, by, 0.008)
            canvas.paint(win, coverage(sdf, canvas.aa) * col(strength) * 0.8, dark)


def draw_nose(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Nose: side shadow, tip highlight, wings, nostrils; AU9 adds bridge wrinkles and lifts the nostrils."""
    skin = ident["skin"]
    nx, ny, nw = f.nose_x, f.nose_y, f.nose_w
    lift = col(geo["nostril_dy"])
    wrinkle = col(geo["nose_wrinkle"])
    win = canvas.window(nx - 0.22, nx + 0.22, f.eye_y - 0.02, ny + 0.1)
    # Bridge side shadow (light from the upper left).
    ridge = segment(win.X, win.Y, f.eye_cx + 0.07 + 0.05 * f.yaw, f.eye_y + 0.06, nx + nw * 0.75, ny - 0.05, 0.02)
    canvas.paint(win, 0.18 * soft(ridge, 0.04), scaled(skin, 0.7))
    under = ellipse(win.X, win.Y, nx, ny + 0.045 + lift, nw * 0.8, 0.02)
    canvas.paint(win, 0.3 * soft(under, 0.03), scaled(skin, 0.6))
    for s in SIDES:
        wing = ellipse(win.X, win.Y, nx + s * nw * 0.78, ny + lift - 0.005, 0.036 * (1 + 0.25 * wrinkle), 0.032)
        canvas.paint(win, 0.55 * coverage(wing, canvas.aa), scaled(skin, 0.85))
        wing_line = np.abs(wing) - 0.004
        canvas.paint(win, 0.35 * coverage(np.maximum(wing_line, -(win.Y - ny - lift + 0.01)), canvas.aa),
                     scaled(skin, 0.55))
    tip = ellipse(win.X, win.Y, nx, ny - 0.018 + lift * 0.5, nw * 0.5, 0.042)
    canvas.paint(win, 0.45 * soft(tip, 0.04), scaled(skin, 1.07))
    for s in SIDES:
        nostril = ellipse(win.X, win.Y, nx + s * nw * 0.45, ny + 0.014 + lift, 0.027 * (1 + 0.35 * wrinkle), 0.013)
        canvas.paint(win, 0.85 * coverage(nostril, canvas.aa), scaled(skin, 0.3))
    # AU9: wrinkles across the upper nose and between the eyes.
    if np.any(geo["nose_wrinkle"] > 0.02):
        dark = scaled(skin, _DARK_LINE)
        for k in range(3):
            yk = f.eye_y + 0.035 + 0.03 * k - 0.9 * portable.square(win.X - f.eye_cx - 0.02 * f.yaw)
            sdf = np.maximum(np.abs(win.Y - yk) - 0.009, np.abs(win.X - f.eye_cx - 0.03 * f.yaw) - 0.075 + 0.01 * k)
            canvas.paint(win, coverage(sdf, canvas.aa) * wrinkle * 0.8, dark)


def draw_nasolabial(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> None:
    """Nasolabial folds from the nose wings to beyond the mouth corners (AU12, AU10, AU9 deepen them)."""
    strength = np.clip(0.1 + 0.6 * geo["nasolabial"] + 0.2 * np.clip(ident["age"] - 0.3, 0, 1), 0, 0.9)
    smile, frown = col(geo["smile"]), col(geo["frown"])
    win = canvas.window(f.mouth_x - 0.5, f.mouth_x + 0.5, f.nose_y - 0.08, f.mouth_y + 0.2)
    dark = scaled(ident["skin"], _DARK_LINE)
    for s in SIDES:
        ax, ay = f.nose_x + s * (f.nose_w + 0.035), f.nose_y - 0.02 + col(geo["nostril_dy"])
        bx = f.mouth_x + s * (f.mouth_w + 0.06)
        by = f.mouth_y + 0.1 + smile * 0.6 + frown * 0.5
        t = np.clip((win.Y - ay) / (by - ay), 0.0, 1.0)
        arc = portable.sin(np.pi * t)
        xc = ax + (bx - ax) * t + s * 0.035 * arc
        sdf = np.maximum(np.abs(win.X - xc) - 0.009, np.maximum(ay - win.Y, win.Y - by))
        fade = portable.power(np.clip(arc, 0.0, 1.0), 0.6)
        canvas.paint(win, coverage(sdf, canvas.aa) * fade * col(strength), dark)


def draw_mouth(canvas: Canvas, f: FaceLayout, ident: ParamTable, geo: ParamTable) -> tuple:
    """Lips, mouth cavity, teeth and the lip seam; returns (window, lip-region coverage).

    The seam rises at the corners with AU12 (``smile``) and falls with AU15 (``frown``); AU25/26 open
    the lips (round opening), AU20 stretches the opening into a wide rectangle, AU10 lifts the upper lip,
    AU23/24 thins the lips.
    """
    mx, my, mw = f.mouth_x, f.mouth_y, f.mouth_w
    smile = col(geo["smile"]) + col(ident["rest_mouth"])
    frown = col(geo["frown"])
    open_up, open_lo = col(geo["open_up"]), col(geo["open_lo"])
    stretch = col(geo["stretch"])
    press = col(geo["lip_press"])
    raise_ = col(geo["lip_raise"])
    lip_up = col(ident["lip_up"]) * (1.0 - press)
    lip_lo = col(ident["lip_lo"]) * (1.0 - press)
    win = canvas.window(mx - mw - 0.04, mx + mw + 0.04, my - 0.16, my + 0.28)
    u = (win.X - mx) / mw
    uc = np.clip(u, -1.0, 1.0)
    au = np.abs(uc)
    seam = my + smile * uc * uc + frown * (au * au * au)
    shape = np.sqrt(np.clip(1.0 - portable.power(au, 2.0 + 6.0 * stretch), 0.0, 1.0))
    y_ui = seam - open_up * shape - raise_ * np.sqrt(1.0 - uc * uc) * (0.5 + 0.5 * au)
    y_li = seam + open_lo * shape
    t = portable.power(1.0 - uc * uc, 0.4)
    y_uo = y_ui - lip_up * t * (1.0 - 0.35 * portable.exp(-portable.square(uc / 0.13)))
    y_lo = y_li + lip_lo * t
    side = (au - 1.0) * mw
    side = np.where(np.abs(u) > 1.0, (np.abs(u) - 1.0) * mw, side)
    lips = np.maximum(np.maximum(y_uo - win.Y, win.Y - y_lo), side)
    lip_cov = coverage(lips, canvas.aa)
    shade = 1.0 - 0.12 * (win.Y < seam)
    canvas.paint(win, lip_cov, ident["lip"], shade)
    cavity = np.maximum(np.maximum(y_ui - win.Y, win.Y - y_li), side)
    cavity_cov = coverage(cavity, canvas.aa)
    canvas.paint(win, cavity_cov, np.broadcast_to(_CAVITY, ident["lip"].shape))
    teeth_side = (au - 0.82) * mw
    upper = np.maximum(np.maximum(cavity, win.Y - (y_ui + 0.035)), teeth_side)
    canvas.paint(win, coverage(upper, canvas.aa) * col(geo["teeth_up"]), np.broadcast_to(_TEETH, ident["lip"].shape))
    lower = np.maximum(np.maximum(cavity, (y_li - 0.025) - win.Y), teeth_side)
    canvas.paint(win, coverage(lower, canvas.aa) * col(geo["teeth_lo"]) * 0.9,
                 np.broadcast_to(_TEETH, ident["lip"].shape))
    # The seam line where the lips meet (and its corners), strongest when closed.
    closed = np.clip(1.0 - (open_up + open_lo) / 0.03, 0.0, 1.0)
    line = np.maximum(np.abs(win.Y - seam) - 0.0075, (np.abs(u) - 1.04) * mw)
    canvas.paint(win, coverage(line, canvas.aa) * (0.35 + 0.5 * closed), np.broadcast_to(_CAVITY, ident["lip"].shape))
    for s in SIDES:
        cx = mx + s * (mw + 0.01)
        dimple = ellipse(win.X, win.Y, cx, my + smile + frown, 0.018, 0.018)
        canvas.paint(win, 0.35 * coverage(dimple, canvas.aa), scaled(ident["skin"], 0.55))
    return win, lip_cov

"""Face layout: per-sample feature positions of a chunk, the face outline, and shared shading primitives.

Lengths are in face units (see ``faces``). Pose: ``yaw`` and ``pitch`` (per sample, in [-1, 1]) shift the
inner features by an amount that grows with their depth (nose tip most), and shrink the far eye, a 2.5-D
approximation of a head turn. In-plane rotation, scale and translation are applied later by warping the
rendered canvas (``corruptions``).

Used by the drawing modules (``render`` for head, hair and accessories, ``features`` for the inner,
expression-bearing features) and by the occluders of ``corruptions``.
"""

from __future__ import annotations

import numpy as np

from datasets.synth.params import ParamTable, col
from datasets.synth.shapes import ellipse

#: The two sides of the face, -1 (image left) and +1 (image right), for symmetric features.
SIDES = (-1.0, 1.0)


def scaled(rgb: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    """(n, 3) colours times a factor (scalar or (n,)), clipped to [0, 1]."""
    factor = np.asarray(factor, dtype=np.float32)
    if factor.ndim == 1:
        factor = factor[:, None]
    return np.clip(rgb * factor, 0.0, 1.0)


def soft(sdf: np.ndarray, width: float) -> np.ndarray:
    """A soft (blurred-edge) coverage for shading: 1 inside, 0 beyond ``width`` outside."""
    return np.clip(0.5 - sdf / width, 0.0, 1.0)


class FaceLayout:
    """Per-sample feature positions of a chunk, (n, 1, 1) float32 each, combining identity, AUs and pose."""

    def __init__(self, ident: ParamTable, geo: ParamTable, acq: ParamTable) -> None:
        yaw, pitch = col(acq["yaw"]), col(acq["pitch"])
        self.yaw = yaw
        self.fcx = 0.04 * yaw
        self.rx = col(ident["face_rx"]) * (1.0 - 0.06 * np.abs(yaw))
        chin = col(geo["chin_drop"])
        self.fcy = col(ident["face_cy"]) + 0.5 * chin
        self.ry = col(ident["face_ry"]) + 0.5 * chin
        self.jaw = col(ident["jaw"])
        self.eye_y = col(ident["eye_y"]) - 0.02 * pitch
        self.eye_dx = col(ident["eye_dx"]) * (1.0 - 0.05 * np.abs(yaw))
        self.eye_cx = 0.09 * yaw
        self.eye_w = col(ident["eye_w"])
        self.eye_h = col(ident["eye_h"])
        self.brow_y = self.eye_y - col(ident["brow_gap"])
        self.brow_cx = 0.075 * yaw
        self.nose_x = 0.17 * yaw
        self.nose_y = col(ident["nose_y"]) + 0.05 * pitch
        self.nose_w = col(ident["nose_w"])
        self.mouth_x = 0.11 * yaw
        self.mouth_y = col(ident["mouth_y"]) + 0.03 * pitch + col(ident["rest_mouth"]) * 0.0
        self.mouth_w = col(ident["mouth_w"]) * (1.0 - 0.08 * np.abs(yaw)) + col(geo["mouth_dw"])

    def subset(self, rows: np.ndarray) -> "FaceLayout":
        """The layout of samples ``rows`` only (every per-sample (n, 1, 1) field indexed)."""
        sub = object.__new__(FaceLayout)
        sub.__dict__.update({name: value[rows] for name, value in vars(self).items()})
        return sub


def face_sdf(X: np.ndarray, Y: np.ndarray, f: FaceLayout) -> np.ndarray:
    """Signed distance to the face outline: an ellipse whose width narrows towards the chin by ``jaw``."""
    t = np.clip((Y - f.fcy) / f.ry, 0.0, 1.0)
    rx = f.rx * (1.0 - f.jaw * t * t)
    return ellipse(X, Y, f.fcx, f.fcy, rx, f.ry)

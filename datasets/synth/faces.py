"""Identity sampling: face shape, skin, feature geometry, hair, glasses and facial hair of each sample.

Every sample is a new identity (identities are continuous parameter vectors, so the train and test
splits, drawn from different seeds, share none). Lengths are in face units (the canonical frame in
which the face ellipse has half-axes of about 0.75 x 1.0, centred slightly below the origin; y grows
downwards), colours are RGB in [0, 1].
"""

from __future__ import annotations

import numpy as np

from datasets.synth import portable, sampling
from datasets.synth.domains import IdentitySpec
from datasets.synth.params import ParamTable

#: Hair styles, in the order of ``IdentitySpec.hair_styles``.
HAIR_STYLES: tuple[str, ...] = ("short", "medium", "long", "fringe", "bald")
#: Hair colours (RGB), in the order of ``IdentitySpec.hair_colours``.
HAIR_COLOURS: np.ndarray = np.array(
    [
        [0.07, 0.06, 0.06],  # black
        [0.20, 0.13, 0.09],  # dark brown
        [0.40, 0.27, 0.16],  # brown
        [0.80, 0.66, 0.42],  # blond
        [0.62, 0.28, 0.13],  # red
        [0.72, 0.71, 0.70],  # grey
    ],
    dtype=np.float32,
)
#: Skin tone ramp: tone 0, 0.5 and 1 (lightest, medium, darkest), interpolated piecewise-linearly.
_SKIN_RAMP = np.array([[0.98, 0.84, 0.74], [0.80, 0.59, 0.44], [0.36, 0.23, 0.16]], dtype=np.float32)
#: Iris colours: dark brown, brown, hazel/green, blue.
_IRIS = np.array([[0.13, 0.08, 0.05], [0.33, 0.19, 0.09], [0.36, 0.42, 0.25], [0.30, 0.45, 0.66]], dtype=np.float32)
#: Spectacle frame colours: black, brown tortoiseshell, silver.
_FRAMES = np.array([[0.08, 0.08, 0.08], [0.45, 0.28, 0.12], [0.7, 0.7, 0.72]], dtype=np.float32)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int, jitter: float = 1.0) -> np.ndarray:
    """Uniform draws whose spread around the middle of [low, high] is scaled by ``jitter``."""
    mid, half = (low + high) / 2.0, (high - low) / 2.0 * jitter
    return rng.uniform(mid - half, mid + half, n).astype(np.float32)


def skin_colour(tone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) tones in [0, 1] -> (n, 3) RGB skin colours with a little per-sample hue variation."""
    t = np.clip(tone, 0.0, 1.0) * 2.0
    low = np.minimum(t.astype(int), 1)
    frac = (t - low)[:, None]
    colour = _SKIN_RAMP[low] * (1 - frac) + _SKIN_RAMP[low + 1] * frac
    hue = sampling.normal(rng, 0.0, 0.025, (len(tone), 3)) * np.array([1.0, 0.7, 1.0])
    return np.clip(colour + hue, 0.05, 1.0).astype(np.float32)


def sample_identities(spec: IdentitySpec, n: int, rng: np.random.Generator) -> ParamTable:
    """Draw ``n`` identities.

    The groups (age, face shape, skin, eyes, brows, nose and mouth, resting idiosyncrasies, hair, accessories)
    are drawn from the one stream ``rng`` in this order; reordering them changes the generated data.

    Returns:
        A table with, per sample: face shape (``face_rx``, ``face_ry``, ``face_cy``, ``jaw``), ``age``,
        ``skin`` (n, 3), eyes (``eye_dx`` half inter-ocular distance, ``eye_y``, ``eye_w`` half width,
        ``eye_h`` half opening, ``eye_tilt``, ``iris`` (n, 3), ``gaze``), brows (``brow_gap`` above the
        eye, ``brow_thick``, ``brow_arch``, ``brow`` colour (n, 3)), nose (``nose_y`` of the tip,
        ``nose_w`` half width), mouth (``mouth_y``, ``mouth_w`` half width, ``lip_up``, ``lip_lo``
        thicknesses, ``lip`` colour (n, 3)), resting idiosyncrasies (``rest_brow``, ``rest_mouth``),
        hair (``hair_style`` index into HAIR_STYLES, ``hair`` colour (n, 3), ``hairline``,
        ``hair_volume``, ``fringe`` fraction of the forehead covered, ``fringe_x`` its centre),
        ``glasses`` (0/1), ``glasses_round`` (0/1), ``frame`` colour (n, 3), ``moustache`` (0/1),
        ``beard`` density in [0, 1]. Scalars are float32 (n,); indices are int64.
    """
    j = spec.geometry_jitter
    t: ParamTable = {}
    t["age"] = sampling.beta(rng, *spec.age, n).astype(np.float32)
    t.update(_face_shape(rng, n, j))
    tone = sampling.beta(rng, *spec.skin_tone, n).astype(np.float32)
    t["skin"] = skin_colour(tone, rng)
    t.update(_eyes(rng, n, j, age=t["age"], tone=tone))
    t.update(_brow_shape(rng, n, j))
    t.update(_nose_and_mouth(rng, n, j, age=t["age"], skin=t["skin"]))
    t["rest_brow"] = sampling.normal(rng, 0.0, spec.rest_asymmetry, n).astype(np.float32)
    t["rest_mouth"] = sampling.normal(rng, 0.0, spec.rest_asymmetry, n).astype(np.float32)
    t.update(_hair(spec, rng, n, j, age=t["age"], skin=t["skin"]))
    t.update(_accessories(spec, rng, n))
    return t


def _face_shape(rng: np.random.Generator, n: int, j: float) -> ParamTable:
    """``face_rx``, ``face_ry``, ``face_cy``, ``jaw`` (spread scaled by the geometry jitter ``j``)."""
    return {
        "face_rx": _uniform(rng, 0.68, 0.80, n, j),
        "face_ry": _uniform(rng, 0.92, 1.02, n, j),
        "face_cy": _uniform(rng, 0.02, 0.10, n, j),
        "jaw": _uniform(rng, 0.22, 0.42, n, j),
    }


def _eyes(rng: np.random.Generator, n: int, j: float, *, age: np.ndarray, tone: np.ndarray) -> ParamTable:
    """Eye geometry (the opening shrinks with ``age``), iris colour (darker skin ``tone``, darker irises), gaze."""
    t: ParamTable = {}
    t["eye_dx"] = _uniform(rng, 0.26, 0.32, n, j)
    t["eye_y"] = _uniform(rng, -0.16, -0.08, n, j)
    t["eye_w"] = _uniform(rng, 0.115, 0.14, n, j)
    t["eye_h"] = _uniform(rng, 0.048, 0.062, n, j) * (1.0 - 0.15 * age)
    t["eye_tilt"] = _uniform(rng, -0.012, 0.02, n, j)
    iris_p = np.stack([0.45 * tone + 0.2, np.full(n, 0.35), 0.15 * (1 - tone), 0.3 * (1 - tone)], axis=1)
    iris_cdf = np.cumsum(iris_p / portable.fixed_sum(iris_p, 1, keepdims=True), 1)  # cumsum adds left to right
    iris_idx = np.count_nonzero(rng.random(n)[:, None] > iris_cdf, axis=1)
    t["iris"] = _IRIS[np.minimum(iris_idx, len(_IRIS) - 1)]
    t["gaze"] = sampling.normal(rng, 0.0, 0.25, n).clip(-0.6, 0.6).astype(np.float32)
    return t


def _brow_shape(rng: np.random.Generator, n: int, j: float) -> ParamTable:
    """``brow_gap``, ``brow_thick``, ``brow_arch`` (the brow colour comes with the hair)."""
    return {
        "brow_gap": _uniform(rng, 0.13, 0.17, n, j),
        "brow_thick": _uniform(rng, 0.05, 0.075, n, j),
        "brow_arch": _uniform(rng, 0.005, 0.035, n, j),
    }


def _nose_and_mouth(rng: np.random.Generator, n: int, j: float, *, age: np.ndarray, skin: np.ndarray) -> ParamTable:
    """Nose and mouth geometry; lips thin with ``age`` and are coloured between ``skin`` and red."""
    t: ParamTable = {}
    t["nose_y"] = _uniform(rng, 0.18, 0.27, n, j)
    t["nose_w"] = _uniform(rng, 0.075, 0.105, n, j)
    t["mouth_y"] = t["nose_y"] + _uniform(rng, 0.25, 0.31, n, j)
    t["mouth_w"] = _uniform(rng, 0.19, 0.24, n, j)
    t["lip_up"] = _uniform(rng, 0.03, 0.045, n, j) * (1.0 - 0.3 * age)
    t["lip_lo"] = _uniform(rng, 0.04, 0.06, n, j) * (1.0 - 0.3 * age)
    redness = rng.uniform(0.35, 0.55, n)[:, None]
    lip = skin * (1 - redness) + np.array([0.80, 0.36, 0.38]) * redness
    t["lip"] = (lip * rng.uniform(0.88, 0.98, n)[:, None]).astype(np.float32)
    return t


def _hair(
    spec: IdentitySpec, rng: np.random.Generator, n: int, j: float, *, age: np.ndarray, skin: np.ndarray
) -> ParamTable:
    """Hair style, colour (greying with ``age``), hairline, volume and fringe; the brow colour follows the hair."""
    t: ParamTable = {}
    t["hair_style"] = sampling.categorical(rng, spec.hair_styles, n)
    colour_idx = sampling.categorical(rng, spec.hair_colours, n)
    greying = rng.random(n) < np.clip((age - 0.55) * 2.0, 0.0, 0.9)
    colour_idx = np.where(greying, len(HAIR_COLOURS) - 1, colour_idx)
    hair = HAIR_COLOURS[colour_idx] * rng.uniform(0.85, 1.15, (n, 1))
    t["hair"] = np.clip(hair, 0.0, 1.0).astype(np.float32)
    brow = np.where(greying[:, None], HAIR_COLOURS[1], t["hair"]) * 0.75 + skin * 0.05
    t["brow"] = np.clip(brow, 0.0, 1.0).astype(np.float32)
    t["hairline"] = _uniform(rng, -0.70, -0.58, n, j) - 0.12 * np.clip(age - 0.5, 0, 1)
    t["hair_volume"] = _uniform(rng, 0.05, 0.16, n)
    t["fringe"] = rng.uniform(0.35, 0.85, n).astype(np.float32)
    t["fringe_x"] = rng.uniform(-0.35, 0.35, n).astype(np.float32)
    return t


def _accessories(spec: IdentitySpec, rng: np.random.Generator, n: int) -> ParamTable:
    """Glasses (shape and frame colour), moustache and beard."""
    t: ParamTable = {}
    t["glasses"] = (rng.random(n) < spec.glasses).astype(np.float32)
    t["glasses_round"] = (rng.random(n) < 0.5).astype(np.float32)
    frame = rng.choice(3, n)
    t["frame"] = _FRAMES[frame]
    facial = rng.random(n) < spec.facial_hair
    t["moustache"] = (facial & (rng.random(n) < 0.8)).astype(np.float32)
    t["beard"] = np.where(facial & (rng.random(n) < 0.6), rng.uniform(0.25, 0.7, n), 0.0).astype(np.float32)
    return t

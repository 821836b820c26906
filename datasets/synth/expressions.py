"""Expressions as FACS-like action units (AUs): Ekman prototypes per class, sampling, and AU -> geometry.

Each sample gets an AU intensity vector (in [0, 1.2]): its class prototype scaled by a per-sample
intensity, with per-AU jitter and small spurious AUs. The confusable pairs share most of their AUs:

- Surprise (AU1+2+5+25+26) vs Fear (AU1+2+4+5+20+25, small AU26): Fear adds drawn-together brows (AU4)
  and horizontally stretched lips (AU20) with a smaller jaw drop.
- Anger (AU4+7+23) vs Disgust (AU4+7+9+10+15, weaker AU4): Disgust has the nose wrinkle (AU9) and raised
  upper lip (AU10) instead of pressed lips (AU23/24).
- Sadness (AU1+4+15+43, moderate) vs Neutral (none): at low intensity sadness is a slightly oblique
  inner brow and slightly lowered mouth corners, the size of an identity's resting idiosyncrasies.

``au_geometry`` maps AUs to displacements in face units (y grows downwards, so a negative dy raises).
"""

from __future__ import annotations

import numpy as np

from datasets.synth import sampling
from datasets.synth.domains import ExpressionSpec
from datasets.synth.params import ParamTable

#: Action units modelled, with their FACS names.
AUS: tuple[str, ...] = (
    "AU1",  # inner brow raiser
    "AU2",  # outer brow raiser
    "AU4",  # brow lowerer (brows down and together, glabella furrows)
    "AU5",  # upper lid raiser (eyes wide, white above the iris)
    "AU6",  # cheek raiser (eyes narrowed from below, crow's feet)
    "AU7",  # lid tightener
    "AU9",  # nose wrinkler
    "AU10",  # upper lip raiser
    "AU12",  # lip corner puller (smile)
    "AU15",  # lip corner depressor
    "AU20",  # lip stretcher
    "AU23",  # lip tightener / presser (AU23+24)
    "AU25",  # lips part
    "AU26",  # jaw drop
    "AU43",  # eyelid droop
)
_A = {name: i for i, name in enumerate(AUS)}

#: Prototype AU intensities per canonical class (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral).
PROTOTYPES: tuple[dict[str, float], ...] = (
    {"AU1": 1.0, "AU2": 1.0, "AU5": 0.9, "AU25": 1.0, "AU26": 1.0},
    {"AU1": 1.0, "AU2": 0.6, "AU4": 0.8, "AU5": 1.0, "AU20": 1.0, "AU25": 0.9, "AU26": 0.3},
    {"AU4": 0.55, "AU7": 0.35, "AU9": 1.0, "AU10": 1.0, "AU15": 0.4, "AU25": 0.25},
    {"AU6": 0.9, "AU12": 1.0},
    {"AU1": 1.0, "AU4": 0.6, "AU15": 0.9, "AU43": 0.6},
    {"AU4": 1.0, "AU7": 1.0, "AU23": 1.0, "AU5": 0.15},
    {},
)

#: Happiness shows teeth on some samples: its AU25 is drawn uniformly in [0, HAPPY_TEETH] per sample.
HAPPY_TEETH = 1.0


def prototype_matrix() -> np.ndarray:
    """(7, len(AUS)) float32 prototype intensities, canonical class order."""
    matrix = np.zeros((len(PROTOTYPES), len(AUS)), dtype=np.float32)
    for cls, proto in enumerate(PROTOTYPES):
        for name, value in proto.items():
            matrix[cls, _A[name]] = value
    return matrix


def sample_action_units(labels: np.ndarray, spec: ExpressionSpec, rng: np.random.Generator) -> np.ndarray:
    """AU intensities of samples of the given (clean) classes.

    Args:
        labels: (n,) int canonical classes (the true expressions, before label noise).
        spec: intensity distribution.
        rng: random stream.

    Returns:
        (n, len(AUS)) float32 in [0, 1.2].
    """
    n = len(labels)
    low, high = spec.intensity
    mid = (low + high) / 2.0
    subtle = rng.random(n) < spec.subtle_fraction
    intensity = np.where(subtle, rng.uniform(low, mid, n), rng.uniform(mid, high, n))
    proto = prototype_matrix()[labels]
    happy = labels == 3
    proto[happy, _A["AU25"]] = rng.uniform(0.0, HAPPY_TEETH, int(happy.sum()))
    jitter = 1.0 + spec.au_jitter * sampling.standard_normal(rng, proto.shape)
    aus = proto * intensity[:, None] * np.clip(jitter, 0.5, 1.5)
    spurious = (rng.random(proto.shape) < 0.25) * rng.uniform(0.0, spec.spurious_au, proto.shape)
    aus = np.where(proto > 0, aus, spurious)
    return np.clip(aus, 0.0, 1.2).astype(np.float32)


def au_geometry(aus: np.ndarray) -> ParamTable:
    """Displacements of facial features caused by AUs.

    Args:
        aus: (n, len(AUS)) AU intensities.

    Returns:
        Per sample (n,) float32: ``brow_in_dy``/``brow_out_dy`` (vertical shift of the inner/outer brow
        ends), ``brow_in_dx`` (shift of the inner end towards the midline), ``furrow`` (glabella lines),
        ``forehead`` (horizontal forehead wrinkles), ``lid_up`` (multiplier of the upper eye opening),
        ``lid_lo`` (multiplier of the lower opening), ``eye_droop`` (outer-corner drop), ``cheek``
        (cheek raise and crow's feet), ``nose_wrinkle``, ``nostril_dy``, ``nasolabial`` (fold depth),
        ``smile`` (corner rise, negative dy), ``frown`` (corner drop), ``mouth_dw`` (half-width change),
        ``open_up``/``open_lo`` (lip separation above/below the seam), ``stretch`` (rectangular mouth
        opening), ``lip_raise`` (AU10 upper lip lift), ``lip_press`` (lip thinning), ``teeth_up``/
        ``teeth_lo`` (visibility of the teeth rows), ``chin_drop`` (chin lowered by the jaw).
    """
    a = {name: aus[:, i] for name, i in _A.items()}
    g: ParamTable = {}
    g["brow_in_dy"] = -0.16 * a["AU1"] + 0.15 * a["AU4"] - 0.04 * a["AU2"]
    g["brow_out_dy"] = -0.15 * a["AU2"] + 0.04 * a["AU4"] - 0.025 * a["AU1"]
    g["brow_in_dx"] = 0.09 * a["AU4"]
    g["furrow"] = np.clip(a["AU4"], 0, 1)
    g["forehead"] = np.clip(0.9 * np.maximum(a["AU1"], a["AU2"]), 0, 1)
    g["lid_up"] = np.clip(1.0 + 1.4 * a["AU5"] - 0.6 * a["AU6"] - 0.7 * a["AU7"] - 0.75 * a["AU43"], 0.15, 2.8)
    g["lid_lo"] = np.clip(1.0 - 0.7 * a["AU6"] - 0.65 * a["AU7"] + 0.25 * a["AU5"], 0.2, 1.35)
    g["eye_droop"] = 0.045 * a["AU43"] + 0.015 * a["AU1"] * (1 - a["AU2"])
    g["cheek"] = np.clip(a["AU6"], 0, 1)
    g["nose_wrinkle"] = np.clip(a["AU9"], 0, 1)
    g["nostril_dy"] = -0.045 * a["AU9"] - 0.025 * a["AU10"]
    g["nasolabial"] = np.clip(0.8 * a["AU12"] + 0.8 * a["AU10"] + 0.4 * a["AU9"] + 0.3 * a["AU6"], 0, 1)
    g["smile"] = -0.17 * a["AU12"]
    g["frown"] = 0.12 * a["AU15"] + 0.02 * a["AU20"]
    g["mouth_dw"] = 0.09 * a["AU12"] + 0.13 * a["AU20"] - 0.08 * a["AU26"] * (1 - a["AU20"]) - 0.05 * a["AU23"]
    g["open_up"] = 0.04 * a["AU25"] + 0.075 * a["AU26"] + 0.03 * a["AU10"]
    g["open_lo"] = 0.03 * a["AU25"] + 0.24 * a["AU26"] + 0.04 * a["AU20"]
    g["stretch"] = np.clip(a["AU20"] + 0.6 * a["AU12"] + 0.5 * a["AU10"], 0, 1)
    g["lip_raise"] = 0.075 * a["AU10"]
    g["lip_press"] = np.clip(0.85 * a["AU23"] + 0.25 * a["AU20"], 0, 0.9)
    g["teeth_up"] = np.clip(np.maximum(1.5 * a["AU25"] * np.maximum(a["AU12"], a["AU20"]), 1.2 * a["AU10"]), 0, 1)
    g["teeth_lo"] = np.clip(1.5 * a["AU25"] * a["AU20"], 0, 1)
    g["chin_drop"] = 0.14 * a["AU26"]
    return {key: np.asarray(value, dtype=np.float32) for key, value in g.items()}

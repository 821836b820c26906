"""Specifications of the synthetic domains: every knob of the generator, frozen per domain.

A domain is fully described by a ``DomainSpec``; its ``repr`` is hashed into the generator signature, so
any change of a knob invalidates cached copies. Units: lengths in the canonical face frame (the rendered
canvas spans ``[-render_extent, +render_extent]`` on both axes, the face ellipse is about 0.75 wide and 1.0
tall in half-axes), angles in degrees, blur in output pixels, intensities of noise in [0, 1] grey levels.

Class priors are in the canonical order of ``datasets.labels`` (Surprise, Fear, Disgust, Happiness,
Sadness, Anger, Neutral) and are normalised by the sampler, so raw counts can be given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: RAF-DB basic-expression train split, canonical order (Surprise ... Neutral).
RAFDB_TRAIN_COUNTS: tuple[float, ...] = (1290, 281, 717, 4772, 1982, 705, 2524)
#: FER2013 train split (Training usage), canonical order (Surprise ... Neutral).
FER2013_TRAIN_COUNTS: tuple[float, ...] = (3171, 4097, 436, 7215, 4830, 3995, 4965)


@dataclass(frozen=True)
class IdentitySpec:
    """Distribution of identity (appearance) parameters.

    Attributes:
        skin_tone: (a, b) of a Beta distribution over tone in [0, 1] (0 lightest, 1 darkest).
        age: (a, b) of a Beta distribution over age in [0, 1]; age drives resting wrinkles, grey hair
            and lid sag.
        hair_styles: probabilities of styles (short, medium, long, fringe, bald).
        hair_colours: probabilities of (black, dark brown, brown, blond, red, grey); grey is further
            made more likely by age.
        glasses: probability of spectacles.
        facial_hair: probability of a moustache and/or beard.
        geometry_jitter: multiplier of the spread of the face-geometry parameters around their means.
        rest_asymmetry: spread of the resting brow tilt and mouth-corner height (face units); these
            idiosyncrasies are what makes a subtle sadness confusable with neutral.
    """

    skin_tone: tuple[float, float] = (1.6, 2.4)
    age: tuple[float, float] = (1.5, 5.0)
    hair_styles: tuple[float, ...] = (0.3, 0.25, 0.25, 0.15, 0.05)
    hair_colours: tuple[float, ...] = (0.3, 0.3, 0.2, 0.12, 0.06, 0.02)
    glasses: float = 0.12
    facial_hair: float = 0.05
    geometry_jitter: float = 1.0
    rest_asymmetry: float = 0.012


@dataclass(frozen=True)
class ExpressionSpec:
    """Distribution of expression intensity.

    Attributes:
        intensity: (low, high) of the per-sample intensity that scales the class's action-unit prototype.
        subtle_fraction: fraction of samples whose intensity is drawn from ``(low, mid)`` only (the subtle
            ones); the others are drawn from ``(mid, high)``, with ``mid`` the middle of the range.
        au_jitter: standard deviation of per-sample, per-AU multiplicative jitter of the prototype.
        spurious_au: amplitude (upper bound) of small random action units added to any sample.
    """

    intensity: tuple[float, float] = (0.45, 1.0)
    subtle_fraction: float = 0.3
    au_jitter: float = 0.15
    spurious_au: float = 0.12


@dataclass(frozen=True)
class CorruptionSpec:
    """Acquisition conditions: pose, lighting, optics, sensor and occluders.

    Attributes:
        rotation_deg: maximum in-plane rotation; drawn from a normal of standard deviation
            ``rotation_deg / 2.5`` truncated to +-``rotation_deg``.
        scale: (low, high) zoom factor of the face within the frame (>1 = face larger).
        translate: maximum shift of the face centre, fraction of the half-frame.
        yaw: maximum head turn, as a fraction of the feature shift of a 45-degree turn (uniform in +-).
        pitch: maximum head nod, same convention.
        blur_sigma: (low, high) Gaussian blur sigma in output pixels (0 = none).
        noise_sigma: (low, high) standard deviation of additive Gaussian sensor noise, grey levels in [0, 1].
        contrast: (low, high) multiplier of the deviation from the image mean.
        brightness: (low, high) additive offset after contrast, grey levels.
        gamma: (low, high) display gamma applied to the [0, 1] image.
        light_gradient: maximum strength of a directional light gradient across the frame (relative gain).
        background_clutter: amplitude of random background structure (0 = flat studio background).
        occluder_prob: probability that a sample receives one occluder.
        occluder_kinds: relative weights of (hand, hair strand, mask, blob) occluders.
        jpeg_block: probability of 8x8 block quantisation artefacts (a cheap JPEG stand-in).
        auto_levels: (low, high) strength of a per-image auto-exposure (a 2nd-98th percentile stretch to
            [0.05, 0.95], blended in by this fraction), applied after contrast, brightness and gamma.
        negative: the exposed image is turned into its negative (v -> 1 - v) before the sensor noise: a change of
            tone mapping, as between a visible-light and a thermal or near-infrared camera, that keeps every
            expression cue (docs/DATA.md, "synth-lab-negative").
    """

    rotation_deg: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    noise_sigma: tuple[float, float] = (0.0, 0.0)
    contrast: tuple[float, float] = (1.0, 1.0)
    brightness: tuple[float, float] = (0.0, 0.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    light_gradient: float = 0.0
    background_clutter: float = 0.0
    occluder_prob: float = 0.0
    occluder_kinds: tuple[float, ...] = (0.4, 0.25, 0.1, 0.25)
    jpeg_block: float = 0.0
    auto_levels: tuple[float, float] = (0.0, 0.0)
    negative: bool = False


@dataclass(frozen=True)
class DomainSpec:
    """Everything that defines one synthetic domain; the generator is a pure function of it.

    Attributes:
        name: registry name, e.g. ``synth-lab``.
        image_size: side of the square output images, pixels.
        channels: 3 (RGB) or 1 (grey).
        n_train, n_test: split sizes.
        seed: root seed; each split uses seeds derived from it (``SeedSequence(seed, spawn_key=(split index,
            stream, chunk))``, ``params.SPLIT_INDEX``), so no two splits share an identity.
        class_prior: relative class frequencies, canonical order; the clean labels follow them exactly
            (largest-remainder rounding).
        n_val: size of the ``val`` split (fresh identities, used only to choose protocol settings, never
            reported: docs/DATA.md, "The validation split"); 0 = no val split.
        label_noise: fraction of samples whose label is flipped (annotator noise), in every split.
        partner_flip: of the flipped labels, the fraction that goes to the confusable partner class
            (the rest goes to a uniformly drawn other class).
        render_size: side of the canonical canvas, pixels (the face is drawn there, then warped).
        render_extent: half-width of the canonical canvas in face units.
        view_extent: half-width of the output field of view in face units (before the scale jitter).
        identity: identity distribution.
        expression: expression-intensity distribution.
        corruption: acquisition conditions.
        chunk: samples rendered per vectorised batch (part of the spec: noise is drawn per chunk).
    """

    name: str
    image_size: int
    channels: int
    n_train: int
    n_test: int
    seed: int
    class_prior: tuple[float, ...]
    n_val: int = 0
    label_noise: float = 0.05
    partner_flip: float = 0.7
    render_size: int = 64
    render_extent: float = 1.0
    view_extent: float = 1.0
    identity: IdentitySpec = field(default_factory=IdentitySpec)
    expression: ExpressionSpec = field(default_factory=ExpressionSpec)
    corruption: CorruptionSpec = field(default_factory=CorruptionSpec)
    chunk: int = 256


SYNTH_LAB = DomainSpec(
    name="synth-lab",
    image_size=64,
    channels=3,
    n_train=5000,
    n_test=1200,
    n_val=1200,
    seed=20240601,
    class_prior=RAFDB_TRAIN_COUNTS,
    render_size=64,
    render_extent=1.0,
    view_extent=1.0,
    identity=IdentitySpec(geometry_jitter=0.8),
    expression=ExpressionSpec(intensity=(0.6, 1.0), subtle_fraction=0.25, spurious_au=0.08),
    corruption=CorruptionSpec(),
)

SYNTH_WILD = DomainSpec(
    name="synth-wild",
    image_size=48,
    channels=1,
    n_train=8000,
    n_test=1200,
    n_val=1200,
    seed=20240602,
    class_prior=FER2013_TRAIN_COUNTS,
    render_size=80,
    render_extent=1.5,
    view_extent=0.86,
    identity=IdentitySpec(
        skin_tone=(1.2, 1.2),
        age=(1.5, 2.0),
        hair_styles=(0.3, 0.2, 0.2, 0.15, 0.15),
        hair_colours=(0.25, 0.25, 0.15, 0.1, 0.05, 0.2),
        glasses=0.25,
        facial_hair=0.2,
        geometry_jitter=1.1,
        rest_asymmetry=0.015,
    ),
    expression=ExpressionSpec(intensity=(0.65, 1.0), subtle_fraction=0.3, au_jitter=0.15, spurious_au=0.08),
    corruption=CorruptionSpec(
        rotation_deg=30.0,
        scale=(0.85, 1.15),
        translate=0.1,
        yaw=0.3,
        pitch=0.15,
        blur_sigma=(0.0, 0.6),
        noise_sigma=(0.02, 0.06),
        contrast=(0.6, 1.0),
        brightness=(-0.1, 0.1),
        gamma=(0.8, 1.25),
        light_gradient=0.35,
        background_clutter=0.3,
        occluder_prob=0.2,
        occluder_kinds=(0.35, 0.25, 0.1, 0.3),
        jpeg_block=0.25,
        auto_levels=(0.3, 0.9),
    ),
)

# synth-lab's faces (same seed, same identities, expressions and splits) seen in negative: the source domain of the
# ``synth_negative`` setup, in which the source model's features transfer to synth-wild no better than features
# learnt on synth-wild without labels (docs/LAB_NOTES.md, "The paper's regime on synthetic data").
SYNTH_LAB_NEGATIVE = replace(SYNTH_LAB, name="synth-lab-negative", corruption=CorruptionSpec(negative=True))

DOMAINS: dict[str, DomainSpec] = {spec.name: spec for spec in (SYNTH_LAB, SYNTH_WILD, SYNTH_LAB_NEGATIVE)}

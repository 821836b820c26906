"""Split generation: labels, annotator noise, per-sample parameters and chunked rendering.

Pipeline of one split of a ``DomainSpec``:

1. clean labels with exactly the class prior's proportions (largest-remainder rounding), shuffled;
2. annotator noise: ``round(label_noise * N)`` samples, drawn without replacement, get another label,
   the confusable partner class with probability ``partner_flip``, else a uniformly drawn other class;
3. identities, action units (from the *clean* label) and acquisition parameters for the whole split;
4. rendering in chunks of ``spec.chunk`` samples (canonical canvas -> occluders -> degradation ->
   uint8), each chunk with its own pixel-noise stream, so the result does not depend on how the
   chunks are scheduled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datasets.labels import NUM_CLASSES
from datasets.synth.corruptions import degrade, draw_occluders, quantise, sample_acquisition
from datasets.synth.domains import DomainSpec
from datasets.synth.expressions import au_geometry, sample_action_units
from datasets.synth.faces import sample_identities
from datasets.synth.params import ParamTable, stream, take
from datasets.synth.render import draw_faces
from datasets.synth.shapes import Canvas

#: Confusable partner of each canonical class (Surprise<->Fear, Disgust<->Anger, Sadness<->Neutral,
#: Happiness->Neutral): where most flipped labels go.
PARTNER: tuple[int, ...] = (1, 0, 5, 6, 6, 2, 4)


@dataclass(frozen=True)
class SplitPlan:
    """Everything drawn for a split before rendering.

    Attributes:
        clean: (N,) int64 true expressions (what is rendered).
        labels: (N,) int64 annotated labels (``clean`` with annotator noise): the dataset's labels.
        flipped: number of samples whose label differs from the clean one.
        identity, action_units, geometry, acquisition: per-sample parameter tables.
    """

    clean: np.ndarray
    labels: np.ndarray
    flipped: int
    identity: ParamTable
    action_units: np.ndarray
    geometry: ParamTable
    acquisition: ParamTable


def class_counts_for(prior: tuple[float, ...], n: int) -> np.ndarray:
    """Samples per class for ``n`` samples following ``prior`` exactly (largest-remainder rounding)."""
    p = np.asarray(prior, dtype=np.float64)
    total = math.fsum(p.tolist())  # exactly rounded, so the same on every CPU
    if p.shape != (NUM_CLASSES,) or np.any(p < 0) or total <= 0:
        raise ValueError(f"class_prior must be {NUM_CLASSES} non-negative weights, got {prior}")
    exact = p / total * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def annotate(clean: np.ndarray, rate: float, partner_flip: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Apply annotator label noise.

    Args:
        clean: (N,) true classes.
        rate: fraction of labels to flip (exactly ``round(rate * N)`` are flipped).
        partner_flip: probability that a flipped label goes to the confusable partner class.
        rng: random stream.

    Returns:
        (noisy labels (N,) int64, number flipped).
    """
    n = len(clean)
    n_flip = int(round(rate * n))
    labels = clean.astype(np.int64).copy()
    if n_flip == 0:
        return labels, 0
    idx = rng.choice(n, n_flip, replace=False)
    partner = np.asarray(PARTNER)[clean[idx]]
    other = (clean[idx] + rng.integers(1, NUM_CLASSES, n_flip)) % NUM_CLASSES
    labels[idx] = np.where(rng.random(n_flip) < partner_flip, partner, other)
    return labels, n_flip


def split_size(spec: DomainSpec, split: str) -> int:
    """Number of samples of ``split`` (``train``, ``test`` or ``val``; a spec without val has ``n_val = 0``)."""
    return {"train": spec.n_train, "test": spec.n_test, "val": spec.n_val}[split]


def split_names(spec: DomainSpec) -> tuple[str, ...]:
    """The splits a cache of ``spec`` holds, in writing order: train, test, then val when ``n_val > 0``."""
    return ("train", "test", "val") if spec.n_val > 0 else ("train", "test")


def plan_split(spec: DomainSpec, split: str) -> SplitPlan:
    """Draw labels, label noise and every per-sample parameter of ``split``."""
    n = split_size(spec, split)
    counts = class_counts_for(spec.class_prior, n)
    clean = np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), counts)
    clean = stream(spec.seed, split, "labels").permutation(clean)
    labels, flipped = annotate(clean, spec.label_noise, spec.partner_flip, stream(spec.seed, split, "label_noise"))
    identity = sample_identities(spec.identity, n, stream(spec.seed, split, "identity"))
    aus = sample_action_units(clean, spec.expression, stream(spec.seed, split, "expression"))
    acquisition = sample_acquisition(spec, n, stream(spec.seed, split, "acquisition"))
    return SplitPlan(clean, labels, flipped, identity, aus, au_geometry(aus), acquisition)


def render_chunk(spec: DomainSpec, plan: SplitPlan, split: str, index: int) -> np.ndarray:
    """Render chunk ``index`` (samples ``index * spec.chunk`` onwards) -> uint8 (n, H, W, C)."""
    start = index * spec.chunk
    stop = min(start + spec.chunk, len(plan.clean))
    ident = take(plan.identity, start, stop)
    geo = take(plan.geometry, start, stop)
    acq = take(plan.acquisition, start, stop)
    canvas = Canvas(stop - start, spec.render_size, spec.render_extent, spec.channels)
    layout = draw_faces(canvas, ident, geo, acq)
    draw_occluders(canvas, layout, ident, acq)
    images = degrade(canvas, acq, spec, stream(spec.seed, split, "pixels", index))
    return quantise(images)


def n_chunks(spec: DomainSpec, split: str) -> int:
    """Number of rendering chunks of ``split``."""
    return -(-split_size(spec, split) // spec.chunk)


def generate(
    spec: DomainSpec, split: str, out: np.ndarray | None = None, on_chunk: Callable[[int], None] | None = None
) -> tuple[np.ndarray, SplitPlan]:
    """Render a whole split.

    Args:
        spec: the domain.
        split: ``train``, ``test`` or ``val``.
        out: optional preallocated uint8 (N, H, W, C) array (e.g. a cache memmap) to render into.
        on_chunk: called with the number of samples after each chunk (progress reporting).

    Returns:
        (images uint8 (N, H, W, C), the split's plan with clean and annotated labels).
    """
    plan = plan_split(spec, split)
    n = len(plan.clean)
    shape = (n, spec.image_size, spec.image_size, spec.channels)
    if out is None:
        out = np.empty(shape, dtype=np.uint8)
    elif out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {shape}, got {out.dtype} {out.shape}")
    for index in range(n_chunks(spec, split)):
        chunk = render_chunk(spec, plan, split, index)
        start = index * spec.chunk
        out[start : start + len(chunk)] = chunk
        if on_chunk is not None:
            on_chunk(len(chunk))
    return out, plan

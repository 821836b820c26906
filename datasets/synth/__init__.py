"""The embedded synthetic FER domain-shift benchmark: procedurally rendered faces in three domains.

``synth-lab`` (colour, 64x64, aligned, frontal, clean, RAF-DB-like class balance) and ``synth-wild``
(grey, 48x48, pose/rotation/scale jitter, blur, noise, low contrast, uneven light, occluders, older and
more varied identities, FER2013-like class balance), and ``synth-lab-negative`` (synth-lab's faces in negative, the
source domain of the ``synth_negative`` setup). Faces are identity parameters plus FACS-like
action units of Ekman's prototypes (``expressions``), drawn by a vectorised implicit-shape rasteriser
(``render``) and degraded by the domain's acquisition conditions (``corruptions``). Labels carry about
5% annotator noise, mostly towards the confusable partner class.

Generation is deterministic: the same spec gives byte-identical arrays. The train, test and val splits use
different derived seeds, so they hold different (continuous-parameter) identities. ``val`` exists only to
choose protocol settings (docs/DATA.md, "The validation split"); no reported table reads it.

Public API (used by ``datasets.registry``): ``DOMAINS``, ``generator_signature``, ``generate_split``,
``write_cache``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from datasets.synth.domains import DOMAINS, DomainSpec
from datasets.synth.params import SPLIT_INDEX
from datasets.synth.pipeline import SplitPlan, generate, plan_split, split_names, split_size

__all__ = ["DOMAINS", "DomainSpec", "GENERATOR_VERSION", "generator_signature", "generate_split", "write_cache",
           "get_spec", "generate_split_with_plan", "split_names"]

#: Bump whenever the rendering code changes its output (a spec change is caught by the spec hash).
#: ``synth-2`` added the ``val`` split; its train and test arrays are byte-identical to ``synth-1``'s
#: (docs/DATA.md, "The validation split"). ``synth-3`` raised synth-wild's sensor noise and occluder rate; synth-lab's
#: arrays are byte-identical to ``synth-1``'s (docs/DATA.md, "Versions"). ``synth-4`` is the same scene drawn with
#: CPU-independent arithmetic (``portable``, ``sampling``): the same bytes on every x86-64 CPU (docs/DATA.md,
#: "Portability").
GENERATOR_VERSION = "synth-4"


def get_spec(name: str) -> DomainSpec:
    """The spec of a synthetic domain; KeyError naming the known ones otherwise."""
    if name not in DOMAINS:
        raise KeyError(f"unknown synthetic domain {name!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[name]


def spec_signature(spec: DomainSpec) -> str:
    """``"<GENERATOR_VERSION>:<first 16 hex of sha256(repr(spec))>"``."""
    return f"{GENERATOR_VERSION}:{hashlib.sha256(repr(spec).encode()).hexdigest()[:16]}"


def generator_signature(name: str) -> str:
    """Identifies the generator version and the domain's spec; stored in the manifest as ``generator``."""
    return spec_signature(get_spec(name))


def generate_split_with_plan(spec: DomainSpec, split: str) -> tuple[np.ndarray, SplitPlan]:
    """Images uint8 (N, H, W, C) of ``split`` of any spec, and its plan (clean and annotated labels)."""
    return generate(spec, split)


def generate_split(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of a registered domain.

    Returns:
        (images uint8 (N, H, W, C), labels int64 (N,)): the annotated (noisy) labels, as in a real set.
    """
    images, plan = generate(get_spec(name), split)
    return images, plan.labels


def write_cache(name: str, out_dir: Path) -> None:
    """Generate every split of ``name`` (train, test, and val when the spec has one) and write them atomically
    as a prepared cache at ``out_dir``.

    The manifest records the dataset, the generator signature, the seeds, the label noise (rate and
    per-split count of flipped labels), the image size and channels.
    """
    from datasets.cache import CacheWriter
    from datasets.progress import progress_bar

    spec = get_spec(name)
    noise: dict[str, object] = {"rate": spec.label_noise, "partner_flip": spec.partner_flip}
    with CacheWriter(out_dir) as writer, progress_bar() as bar:
        for split in split_names(spec):
            n = split_size(spec, split)
            images, labels = writer.create_split(split, n, spec.image_size, spec.image_size, spec.channels)
            task = bar.add_task(f"generating {name} {split}", total=n)
            _, plan = generate(spec, split, out=images, on_chunk=lambda k, t=task: bar.advance(t, k))
            labels[:] = plan.labels
            noise[f"{split}_flipped"] = plan.flipped
        writer.manifest.update(
            dataset=name,
            generator=generator_signature(name),
            seed=spec.seed,
            split_seeds={split: [spec.seed, SPLIT_INDEX[split]] for split in split_names(spec)},
            label_noise=noise,
            image_size=spec.image_size,
            channels=spec.channels,
            synthetic=True,
        )


def describe_plan(spec: DomainSpec, split: str) -> SplitPlan:
    """The labels and parameters of a split without rendering it (cheap; for inspection and tests)."""
    return plan_split(spec, split)

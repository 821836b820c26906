"""What a method or an SSL objective declares about its cost, as plain data: ``python -m benchmark bench`` times a
few stages on a device (``benchmark.orchestration.stage_timing``) and multiplies their per-image seconds by these
declarations (``benchmark.orchestration.cost_model``); ``sweep --plan`` projects jobs the same way.

The timed stages, by name: ``source`` (a source-training step: a step through the source network), ``ssl`` (a
self-supervised pretraining step), ``infer`` (feature extraction), ``kmeans`` (faiss k-means, timed at a fixed
size), ``ssl_kmeans`` (one spherical k-means pass, per row), and one stage per method that declares its own
timed step (``BenchStep``), named after the method.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from benchmark.config.profiles import Profile
from datasets.labels import NUM_CLASSES
from methods.core.precision import prepare_for_training, training_numerics

#: A factory of the numerics context a timed forward pass runs in.
Numerics = Callable[[], AbstractContextManager]


@dataclass(frozen=True)
class CostTerm:
    """One part of a job's device time: ``epochs`` passes over ``images`` images (rows) at a timed stage's speed.

    Seconds = ``factor * epochs * images_per_pass * seconds per image of stage``, where ``images_per_pass`` is
    ``images`` without a ``batch``, else the images of the full batches (the last partial batch is dropped; fewer
    images than one batch make one step of all of them, as ``methods.core.data.batch_indices`` does).

    Attributes:
        stage: the timed stage whose speed it costs (see the module docstring).
        images: images (rows) per pass, >= 0.
        epochs: passes.
        batch: images per step; None: every image counts (feature extraction, k-means passes).
        factor: forward/backward passes per image and step (DANN: a source and a target batch, 2).
        clusters: for the ``kmeans`` stage only: k-means of ``images`` rows into ``clusters`` clusters, scaled from
            the timed call by rows x clusters (``epochs``, ``batch`` and ``factor`` unused).
        stem: the stem of the network the step runs through; when the stage was timed on another stem, the
            ``source`` stage's speed is used instead (the network dominates). None: any.
    """

    stage: str
    images: int
    epochs: int = 1
    batch: int | None = None
    factor: int = 1
    clusters: int | None = None
    stem: str | None = None

    def images_per_pass(self) -> int:
        """Images processed per pass: all of them, or those of the full batches (at least one batch)."""
        if self.batch is None or self.images < self.batch:
            return self.images
        return (self.images // self.batch) * self.batch


@dataclass(frozen=True)
class TrainingStep:
    """One training step in two parts: ``views()`` makes the batch's augmented inputs, ``update(views)`` runs the
    forward pass, loss, backward pass and optimiser step (``bench`` times them apart)."""

    views: Callable[[], Any]
    update: Callable[[Any], None]


@dataclass(frozen=True)
class BenchStep:
    """A training step that ``bench`` times as a stage of its own (named after the method that declares it).

    Attributes:
        label: what is timed, in words (a line of the bench table).
        batch: images per step at the profile.
        stem: the stem of the network it trains (``CostTerm.stem`` compares with it).
        cpu_batch: images per timed step on CPU to start from (the per-image cost is scaled up).
        build: ``build(batch, device)`` -> the step on ``batch`` random (B, 3, S, S) uint8 images on ``device``.
    """

    label: str
    batch: int
    stem: str
    cpu_batch: int
    build: Callable[[int, torch.device], TrainingStep]


@dataclass(frozen=True)
class EpochWork:
    """Per-epoch work of an SSL objective besides its steps, as ``bench`` times it (stage ``ssl_kmeans``).

    Attributes:
        label: what is timed, in words.
        rows: rows x passes that one ``run()`` processes (``per_image`` of the stage is seconds per row and pass).
        run: does the work once, on the device it was built for.
    """

    label: str
    rows: int
    run: Callable[[], None]


def random_images(n: int, size: int, device: torch.device) -> torch.Tensor:
    """(n, 3, size, size) random uint8 images on ``device`` (timed steps need no data)."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device=device)


def random_batch(n: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``random_images`` and (n,) int64 random class labels on ``device``."""
    return random_images(n, size, device), torch.randint(0, NUM_CLASSES, (n,), device=device)


def timed_training(model: nn.Module, profile: Profile, device: torch.device) -> tuple[nn.Module, Numerics]:
    """The model and a factory of the numerics context its forward passes run in, as training runs them
    (``methods.core.precision``: channels-last / compile, bf16 autocast when the profile asks)."""
    return prepare_for_training(model, profile), partial(training_numerics, profile, device)

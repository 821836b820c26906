"""The timed stages of ``bench``: a few steps of every training stage at a profile's real sizes on a device.

Stages (synthetic random uint8 images of the profile's size: no data, no weights needed):

* ``source``: one source-training step (the profile's network, stem, head, batch and recipe augmentation);
* ``ssl``: one step of the timed SSL objective (``methods.ssl.ssl_registry.timed_ssl``) with the profile's
  multi-crop views on its SSL stem (``ssl_stem or stem``);
* one stage per method that declares a step of its own (``Method.bench_step``), named after the method (CluP's
  stage-3 step: strong augmentation + mixup, the backbone the profile resolves for it);
* ``infer``: feature extraction (``methods.core.inference.infer``), images/s;
* ``kmeans``: faiss k-means, K = ``KMEANS_K`` on ``KMEANS_ROWS`` random rows of the backbone's feature width;
* ``ssl_kmeans``: the per-epoch work an SSL objective declares (``SSLObjective.bench_epoch_work``: DeepClusterV2's
  spherical k-means pass), per row.

Each step is timed after one warm-up step, with the device synchronised around the view making, so a step's
time splits into augmentation and the rest. On CPU the steps run at small batches (``CPU_BATCH``, or the method's
``BenchStep.cpu_batch``) and are scaled per image; on CUDA at the profile's batch, halved until it fits when it
runs out of memory (and said so).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmark.config.profiles import Profile
from benchmark.services.pretrain import ssl_optimizer
from methods import registry
from methods.api import BenchStep, Method, TrainingStep
from methods.core.cost import EpochWork, random_batch, random_images, timed_training
from methods.core.inference import infer
from methods.core.kmeans import kmeans
from methods.core.models import build_backbone, build_classifier
from methods.core.training import optimise, shot_optimizer, supervised_views
from methods.ssl.objective import SSLObjective
from methods.ssl.ssl_registry import get_ssl, ssl_names, ssl_recipe, timed_ssl
from methods.ssl.views import MultiCrop

#: Images per timed step on CPU to start from (see ``time_training_stage``); the per-image cost is scaled up. A
#: method's own stage declares its own (``BenchStep.cpu_batch``).
CPU_BATCH = {"source": 8, "ssl": 1, "infer": 32}
#: On CPU, a step faster than this (warm-up, seconds) is timed again at a 4x larger batch.
CPU_STEP_SECONDS = 1.0
#: Timed steps after the warm-up step.
TIMED_STEPS = {"cpu": 1, "cuda": 3}
#: The k-means as timed: rows, clusters (the CluP paper's K for raf_fer2013 on about FER2013's size), Lloyd
#: iterations (``methods.core.pseudo_labels.cluster_pseudo_labels``' default) and those timed on CPU.
KMEANS_ROWS, KMEANS_K, KMEANS_ITERATIONS, CPU_KMEANS_ITERATIONS = 28_000, 1000, 20, 5
#: Rows of the timed per-epoch SSL work (at least the prototypes).
SSL_KMEANS_ROWS = 4096


@dataclass(frozen=True)
class StageTime:
    """One timed stage.

    Attributes:
        name: ``source``, ``ssl``, a method's name, ``infer``, ``kmeans`` or ``ssl_kmeans``.
        label: what was timed, in words.
        batch: images per step at the profile (``kmeans``: rows clustered; ``ssl_kmeans``: rows x passes).
        timed_batch: images per timed step (smaller on CPU, or after running out of memory).
        seconds: mean wall seconds of one timed step (``kmeans``, ``ssl_kmeans``: of the whole call).
        augmentation_seconds: of ``seconds``, the time making the views (None: no augmentation).
        stem: the backbone's stem.
        note: how the figure was obtained, when it departs from the profile (a smaller batch, out of memory).
    """

    name: str
    label: str
    batch: int
    timed_batch: int
    seconds: float
    augmentation_seconds: float | None = None
    stem: str | None = None
    note: str = ""

    @property
    def per_image(self) -> float:
        """Seconds per image (per row for the k-means stages)."""
        return self.seconds / self.timed_batch

    @property
    def images_per_second(self) -> float:
        """Images (rows) per second at the timed batch."""
        return self.timed_batch / self.seconds

    @property
    def profile_step_seconds(self) -> float:
        """Seconds of one step at the profile's batch, scaled per image from the timed batch."""
        return self.per_image * self.batch

    @property
    def augmentation_share(self) -> float | None:
        """Fraction of the step spent making the views."""
        return None if self.augmentation_seconds is None else self.augmentation_seconds / self.seconds


#: Timed stages by name.
Stages = Mapping[str, StageTime]
#: Times one stage at a profile on a device.
Measure = Callable[[Profile, torch.device], StageTime]


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name (``/proc/cpuinfo``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "cpu"


def device_slug(device: torch.device) -> str:
    """``cpu``, or the GPU's name in lower case with dashes (``nvidia-h200``): the bench file's suffix."""
    if device.type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_step(step: TrainingStep, device: torch.device, steps: int) -> tuple[float, float]:
    """(seconds per step, of which making the views), averaged over ``steps`` steps."""
    total = augmentation = 0.0
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        views = step.views()
        _sync(device)
        made = time.perf_counter()
        step.update(views)
        _sync(device)
        total += time.perf_counter() - start
        augmentation += made - start
    return total / steps, augmentation / steps


def _source_step(profile: Profile, batch: int, device: torch.device) -> TrainingStep:
    """A source-training step: the profile's classifier, SGD as the recipe, its augmentation, cross-entropy."""
    recipe = profile.source
    model = build_classifier(profile.arch, profile.stem, profile.width, recipe.head).to(device).train()
    optimizer = shot_optimizer(model.backbone.parameters(), model.head.parameters(), recipe.lr, recipe.backbone_lr_mult,
                               recipe.momentum, recipe.weight_decay, recipe.nesterov)
    model, numerics = timed_training(model, profile, device)
    views = supervised_views(recipe.augmentation)
    images, labels = random_batch(batch, profile.image_size, device)

    def update(x: torch.Tensor) -> None:
        with numerics():
            loss = F.cross_entropy(model(x), labels, label_smoothing=recipe.label_smoothing)
        optimise(optimizer, loss)

    return TrainingStep(lambda: views(images), update)


def _ssl_step(profile: Profile, batch: int, device: torch.device) -> TrainingStep:
    """A ``timed_ssl()`` step as ``benchmark.services.pretrain`` runs it (views of one size through the backbone
    together), on the SSL stem, at a late epoch (prototypes not frozen)."""
    recipe = ssl_recipe(profile, timed_ssl())
    backbone, dim = build_backbone(profile.arch, profile.ssl_stem or profile.stem, profile.width)
    objective = get_ssl(timed_ssl())(dim, recipe, max(batch, recipe.prototypes))
    backbone = backbone.to(device).to(memory_format=torch.channels_last).train()  # always, as pretraining does
    objective = objective.to(device).train()
    optimizer = ssl_optimizer([*backbone.parameters(), *objective.parameters()], recipe)
    backbone, numerics = timed_training(backbone, profile, device)
    crops = MultiCrop(recipe, recipe.large_size or profile.image_size)
    images, indices = random_images(batch, profile.image_size, device), torch.arange(batch, device=device)
    epoch = recipe.epochs - 1

    def embed(views: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(objective.project(backbone(torch.cat(views))).chunk(len(views))) if views else []

    def update(views: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        objective.before_step()
        with numerics():
            loss = objective.loss(embed(views[0]), embed(views[1]), indices, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        objective.after_backward(epoch)
        optimizer.step()

    return TrainingStep(lambda: crops(images), update)


def _crops(profile: Profile) -> str:
    """The SSL views in words, e.g. ``2x160 + 6x80``."""
    recipe = ssl_recipe(profile, timed_ssl())
    large = f"{recipe.large_crops}x{recipe.large_size or profile.image_size}"
    return large + (f" + {recipe.small_crops}x{recipe.small_size}" if recipe.small_crops else "")


def source_bench_step(profile: Profile) -> BenchStep:
    """The ``source`` stage's step at ``profile``."""
    label = (f"source training step ({profile.arch}, {profile.stem} stem, {profile.image_size} px, "
             f"{profile.source.augmentation} augmentation)")
    build = partial(_source_step, profile)
    return BenchStep(label, profile.source.batch_size, profile.stem, CPU_BATCH["source"], build)


def ssl_bench_step(profile: Profile) -> BenchStep:
    """The ``ssl`` stage's step at ``profile``."""
    stem = profile.ssl_stem or profile.stem
    batch = ssl_recipe(profile, timed_ssl()).batch_size
    label = f"SSL step ({timed_ssl()}, {stem} stem, {_crops(profile)})"
    return BenchStep(label, batch, stem, CPU_BATCH["ssl"], partial(_ssl_step, profile))


def method_bench_step(method: str, profile: Profile) -> BenchStep | None:
    """The step ``method`` declares for a stage of its own (``Method.bench_step``) at the profile's
    hyperparameters; None when it declares none."""
    cls = registry.get(method)
    return cls.bench_step(registry.resolve_hparams(cls, {}, {}, profile), profile)


def time_training_stage(name: str, step: BenchStep, device: torch.device) -> StageTime:
    """Time training stage ``name`` (its ``step``): one warm-up step, then ``TIMED_STEPS``.

    On CUDA at the profile's batch, halved while it runs out of memory. On CPU from ``step.cpu_batch``, multiplied
    by 4 (up to the profile's batch) while the warm-up step takes under ``CPU_STEP_SECONDS``: a cheap step is timed
    at a batch where per-step overheads do not dominate, an expensive one at a batch that fits the time.
    """
    batch = step.batch
    cpu = device.type == "cpu"
    timed, note = (min(batch, step.cpu_batch) if cpu else batch), ""
    while True:
        try:
            training_step = step.build(timed, device)
            warm_up, _ = _time_step(training_step, device, 1)
            if cpu and timed < batch and warm_up < CPU_STEP_SECONDS:
                timed = min(batch, 4 * timed)
                continue
            seconds, augmentation = _time_step(training_step, device, TIMED_STEPS["cpu" if cpu else "cuda"])
            if cpu and timed < batch:
                note = f"timed at batch {timed} of {batch} on CPU, scaled per image"
            return StageTime(name, step.label, batch, timed, seconds, augmentation, step.stem, note)
        except torch.cuda.OutOfMemoryError:
            if timed <= 2:
                raise
        torch.cuda.empty_cache()  # outside the handler, once the failed step's tensors are released
        timed //= 2
        note = f"the profile's batch ran out of memory on {device_name(device)}: timed at batch {timed}, scaled"


def time_inference(profile: Profile, device: torch.device) -> StageTime:
    """Feature extraction (``infer``) with the source network: images/s (``CPU_BATCH`` images on CPU)."""
    batch = profile.eval_batch_size
    n = min(batch, CPU_BATCH["infer"]) if device.type == "cpu" else 4 * batch
    model = build_classifier(profile.arch, profile.stem, profile.width, profile.source.head).to(device)
    images = random_images(n, profile.image_size, device)
    infer(model, images[: min(n, batch)], batch)  # warm-up
    _sync(device)
    start = time.perf_counter()
    infer(model, images, batch)
    _sync(device)
    note = f"{n} images on CPU, scaled per image" if n < batch else ""
    return StageTime("infer", f"feature extraction ({profile.stem} stem, {profile.image_size} px, batch {batch})",
                     n, n, time.perf_counter() - start, stem=profile.stem, note=note)


def time_kmeans(profile: Profile, device: torch.device) -> StageTime:
    """Faiss k-means (``methods.core.kmeans.kmeans``, as CluP's stage 1 runs it): K = ``KMEANS_K`` on
    ``KMEANS_ROWS`` random rows of the backbone's feature width, one timed call of ``KMEANS_ITERATIONS`` Lloyd
    iterations (on CPU of ``CPU_KMEANS_ITERATIONS``, scaled by iterations + 1: the final assignment costs one more
    pass)."""
    dim = build_backbone(profile.arch, profile.stem, profile.width)[1]
    features = torch.randn(KMEANS_ROWS, dim, device=device)
    iterations = CPU_KMEANS_ITERATIONS if device.type == "cpu" else KMEANS_ITERATIONS
    _sync(device)
    start = time.perf_counter()
    kmeans(features, KMEANS_K, seed=0, n_iter=iterations)
    _sync(device)
    seconds = (time.perf_counter() - start) * (KMEANS_ITERATIONS + 1) / (iterations + 1)
    scaled = iterations < KMEANS_ITERATIONS
    note = f"{iterations} of {KMEANS_ITERATIONS} iterations timed on CPU, scaled" if scaled else ""
    label = f"k-means K={KMEANS_K} on {KMEANS_ROWS:,} x {dim} (faiss, {KMEANS_ITERATIONS} iterations)"
    return StageTime("kmeans", label, KMEANS_ROWS, KMEANS_ROWS, seconds, note=note)


def _epoch_work(profile: Profile, device: torch.device) -> EpochWork | None:
    """The per-epoch work of the first objective (``ssl_names`` order) that declares one, on ``device``."""
    for name in ssl_names():
        work = get_ssl(name).bench_epoch_work(ssl_recipe(profile, name), SSL_KMEANS_ROWS, device)
        if work is not None:
            return work
    return None


def time_ssl_kmeans(profile: Profile, device: torch.device) -> StageTime:
    """One ``run()`` of an SSL objective's per-epoch work (DeepClusterV2: a spherical k-means iteration and its
    final assignment); ``per_image`` is seconds per row and pass."""
    work = _epoch_work(profile, device)
    if work is None:
        raise RuntimeError("no SSL objective declares per-epoch work (SSLObjective.bench_epoch_work)")
    _sync(device)
    start = time.perf_counter()
    work.run()
    _sync(device)
    return StageTime("ssl_kmeans", work.label, work.rows, work.rows, time.perf_counter() - start)


def _declares(cls: type, base: type, attribute: str) -> bool:
    """Whether ``cls`` overrides classmethod ``attribute`` of ``base``."""
    return getattr(cls, attribute).__func__ is not getattr(base, attribute).__func__


def stage_measures() -> dict[str, Measure]:
    """Every timed stage, in the order ``bench`` runs and prints them: ``source``, ``ssl``, each method's own step
    (registry order), ``infer``, ``kmeans`` and, when an SSL objective declares per-epoch work, ``ssl_kmeans``."""
    methods = [name for name, cls in registry.available().items() if _declares(cls, Method, "bench_step")]
    measures: dict[str, Measure] = {
        "source": lambda p, d: time_training_stage("source", source_bench_step(p), d),
        "ssl": lambda p, d: time_training_stage("ssl", ssl_bench_step(p), d),
    }
    for name in methods:
        measures[name] = partial(_time_method_stage, name)
    measures.update(infer=time_inference, kmeans=time_kmeans)
    if any(_declares(get_ssl(name), SSLObjective, "bench_epoch_work") for name in ssl_names()):
        measures["ssl_kmeans"] = time_ssl_kmeans
    return measures


def _time_method_stage(method: str, profile: Profile, device: torch.device) -> StageTime:
    """Time the step ``method`` declares (``method_bench_step``)."""
    step = method_bench_step(method, profile)
    if step is None:
        raise RuntimeError(f"method {method!r} declares bench_step but gave no step at profile {profile.name}")
    return time_training_stage(method, step, device)

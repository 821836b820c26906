"""``bench``: time a few steps of every training stage at a profile's real sizes on this device, then project the
wall time of the paper's jobs from those figures.

Stages (synthetic random uint8 images of the profile's size: no data, no weights needed):

* ``source``: one source-training step (the profile's network, stem, head, batch and recipe augmentation);
* ``ssl``: one SwAV step with the profile's multi-crop views on its SSL stem (``ssl_stem or stem``);
* ``clup``: one CluP stage-3 step (strong augmentation + mixup, the backbone the profile resolves for CluP);
* ``infer``: feature extraction (``methods.core.inference.infer``), images/s;
* ``kmeans``: CluP stage 1's faiss k-means, K = 1000 on 28,000 random rows of the backbone's feature width;
* ``ssl_kmeans``: one pass of DeepClusterV2's per-epoch spherical k-means (its prototypes), per row.

Each step is timed after one warm-up step, with the device synchronised around the view making, so a step's
time splits into augmentation and the rest. On CPU the steps run at small batches (``CPU_BATCH``) and are scaled
per image; on CUDA at the profile's batch, halved until it fits when it runs out of memory (and said so). The
figures are saved to ``$FERBENCH_HOME/bench/<profile>-<device slug>.json``, where ``sweep --plan`` finds them.

Projections (``source_seconds``, ``ssl_seconds``, ``job_seconds``) are images x epochs x seconds per image of
the stage that trains them, plus feature extraction and k-means where the job does them. Their assumptions are
written next to each formula; docs/PERFORMANCE.md, section "bench", lists them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.devices import resolve_device
from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile
from benchmark.config.setups import PAPER_SETUPS, Setup, get_setup
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.services.pretrain import ssl_optimizer
from datasets.cache import is_complete, read_manifest
from datasets.labels import NUM_CLASSES
from datasets.progress import progress_bar
from datasets.registry import cache_dir, home
from methods import registry
from methods.core.data import standardise, strong_augmentation, to_unit
from methods.core.inference import infer
from methods.core.kmeans import kmeans
from methods.core.losses import mixup_cross_entropy
from methods.core.models import Classifier, LinearHead, build_backbone, build_classifier
from methods.core.precision import prepare_for_training, training_numerics
from methods.core.training import optimise, shot_optimizer, supervised_views
from methods.ssl.deepclusterv2 import HEADS as DCV2_HEADS
from methods.ssl.spherical_kmeans import spherical_kmeans
from methods.ssl.ssl_registry import get_ssl, ssl_names, ssl_recipe
from methods.ssl.views import MultiCrop

#: Train and test images of each dataset, used when its cache is not prepared here (a prepared cache's manifest
#: gives the exact counts and wins).
DATASET_SIZES: dict[str, tuple[int, int]] = {
    "rafdb": (12_271, 3_068),  # RAF-DB basic, official split (datasets/rafdb.py, docs/DATA.md)
    "fer2013": (28_709, 7_178),  # Training / PublicTest + PrivateTest (datasets/fer2013.py, docs/DATA.md)
    # 91,793 faces split 80/20 by photo (datasets/expw.py); the exact sizes depend on --split-seed: 0.8 x 91,793.
    "expw": (73_434, 18_359),
    # ASSUMPTION: 54,901 images in the CluP paper (docs/DATA.md); the train/test lists' sizes are not known here,
    # so 80/20 is assumed.
    "afe": (43_921, 10_980),
    "synth-lab": (5_000, 1_200),  # datasets/synth/domains.py SYNTH_LAB
    "synth-wild": (8_000, 1_200),  # datasets/synth/domains.py SYNTH_WILD
}
#: Images per timed step on CPU to start from (see ``time_training_stage``); the per-image cost is scaled up.
CPU_BATCH = {"source": 8, "ssl": 1, "clup": 2, "infer": 32}
#: On CPU, a step faster than this (warm-up, seconds) is timed again at a 4x larger batch.
CPU_STEP_SECONDS = 1.0
#: Timed steps after the warm-up step.
TIMED_STEPS = {"cpu": 1, "cuda": 3}
#: CluP stage 1's k-means as timed: rows, clusters (the paper's K for raf_fer2013 on about FER2013's size), Lloyd
#: iterations (``methods.core.pseudo_labels.cluster_pseudo_labels``' default) and those timed on CPU.
KMEANS_ROWS, KMEANS_K, KMEANS_ITERATIONS, CPU_KMEANS_ITERATIONS = 28_000, 1000, 20, 5
#: Rows of the timed spherical k-means pass (at least the prototypes).
SSL_KMEANS_ROWS = 4096
#: The objective whose step the ``ssl`` stage times (DeepClusterV2's step is taken to cost the same).
TIMED_SSL = "swav"
BENCH_ADVICE = "run `python -m benchmark bench --profile {profile}` first"


@dataclass(frozen=True)
class StageTime:
    """One timed stage.

    Attributes:
        name: ``source``, ``ssl``, ``clup``, ``infer``, ``kmeans`` or ``ssl_kmeans``.
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


Stages = Mapping[str, StageTime]


@dataclass(frozen=True)
class Projection:
    """A projected job: ``name``, the images of one epoch, its epochs, and wall seconds (None: unknown)."""

    name: str
    images: int
    epochs: int
    seconds: float | None


@dataclass
class BenchResult:
    """What ``bench`` measured on one device at one profile (saved as JSON, read by ``sweep --plan``).

    ``backbone``: the profile values the per-image figures depend on (``figures_key``); projections at a
    profile with other values do not use them. ``load_average``: the machine's 1-minute load average before
    the run (other work on the cores slows every figure down).
    """

    profile: str
    device: str
    device_name: str
    slug: str
    threads: int
    torch: str
    measured_at: str
    wall_seconds: float
    backbone: dict[str, Any]
    stages: dict[str, StageTime]
    projections: list[Projection] = field(default_factory=list)
    load_average: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, each stage with its derived figures (``images_per_second``, ``augmentation_share``,
        ``profile_step_seconds``) too."""
        values = asdict(self)
        for name, stage in self.stages.items():
            values["stages"][name].update(images_per_second=stage.images_per_second,
                                          augmentation_share=stage.augmentation_share,
                                          profile_step_seconds=stage.profile_step_seconds)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BenchResult:
        values = dict(values)
        names = {f.name for f in fields(StageTime)}
        values["stages"] = {k: StageTime(**{n: v for n, v in stage.items() if n in names})
                            for k, stage in values["stages"].items()}
        values["projections"] = [Projection(**p) for p in values.get("projections", [])]
        return cls(**values)


# --- devices and files -------------------------------------------------------------------------------------------


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


def bench_path(profile: str, device: torch.device) -> Path:
    """``$FERBENCH_HOME/bench/<profile>-<device slug>.json``."""
    return home() / "bench" / f"{profile}-{device_slug(device)}.json"


def load_bench(profile: str, device: torch.device) -> BenchResult | None:
    """The saved bench of ``profile`` on this kind of device, or None."""
    path = bench_path(profile, device)
    return BenchResult.from_dict(json.loads(path.read_text())) if path.is_file() else None


def save_bench(result: BenchResult, device: torch.device) -> Path:
    """Write ``result`` to ``bench_path`` (atomically); returns the path."""
    path = bench_path(result.profile, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result.as_dict(), indent=2))
    os.replace(tmp, path)
    return path


def figures_key(profile: Profile) -> dict[str, Any]:
    """The profile values per-image figures depend on: networks, input size, numerics."""
    return {**profile.backbone_fields(), "ssl_stem": profile.ssl_stem or profile.stem, **profile.numerics_fields()}


def split_sizes(dataset: str) -> tuple[int, int]:
    """(train, test) images of ``dataset``: from its prepared cache when there is one, else ``DATASET_SIZES``."""
    cache = cache_dir(dataset)
    if is_complete(cache):
        splits = read_manifest(cache)["splits"]
        return int(splits["train"]["n"]), int(splits["test"]["n"])
    if dataset not in DATASET_SIZES:
        raise UserError(f"no size known for dataset {dataset!r}: prepare it (`python -m benchmark data prepare`)")
    return DATASET_SIZES[dataset]


# --- timing ------------------------------------------------------------------------------------------------------


Numerics = Callable[[], AbstractContextManager]


def _training(model: nn.Module, profile: Profile, device: torch.device) -> tuple[nn.Module, Numerics]:
    """The model and a factory of the numerics context its forward passes run in, as training runs them
    (``methods.core.precision``: channels-last / compile, bf16 autocast when the profile asks)."""
    return prepare_for_training(model, profile), partial(training_numerics, profile, device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(n: int, size: int, device: torch.device) -> torch.Tensor:
    """(n, 3, size, size) random uint8 images on ``device``."""
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device=device)


@dataclass(frozen=True)
class _Step:
    """One training step in two parts: ``views()`` makes the batch's augmented inputs, ``update(views)`` runs the
    forward pass, loss, backward pass and optimiser step."""

    views: Callable[[], Any]
    update: Callable[[Any], None]


def _time_step(step: _Step, device: torch.device, steps: int) -> tuple[float, float]:
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


def _source_step(profile: Profile, batch: int, device: torch.device) -> _Step:
    """A source-training step: the profile's classifier, SGD as the recipe, its augmentation, cross-entropy."""
    recipe = profile.source
    model = build_classifier(profile.arch, profile.stem, profile.width, recipe.head).to(device).train()
    optimizer = shot_optimizer(model.backbone.parameters(), model.head.parameters(), recipe.lr, recipe.backbone_lr_mult,
                               recipe.momentum, recipe.weight_decay, recipe.nesterov)
    model, numerics = _training(model, profile, device)
    views = supervised_views(recipe.augmentation)
    images, labels = _images(batch, profile.image_size, device), torch.randint(0, NUM_CLASSES, (batch,), device=device)

    def update(x: torch.Tensor) -> None:
        with numerics():
            loss = F.cross_entropy(model(x), labels, label_smoothing=recipe.label_smoothing)
        optimise(optimizer, loss)

    return _Step(lambda: views(images), update)


def _ssl_step(profile: Profile, batch: int, device: torch.device) -> _Step:
    """A ``TIMED_SSL`` step as ``benchmark.services.pretrain`` runs it (views of one size through the backbone
    together), on the SSL stem, at a late epoch (prototypes not frozen)."""
    recipe = ssl_recipe(profile, TIMED_SSL)
    backbone, dim = build_backbone(profile.arch, profile.ssl_stem or profile.stem, profile.width)
    objective = get_ssl(TIMED_SSL)(dim, recipe, max(batch, recipe.prototypes))
    backbone = backbone.to(device).to(memory_format=torch.channels_last).train()  # always, as pretraining does
    objective = objective.to(device).train()
    optimizer = ssl_optimizer([*backbone.parameters(), *objective.parameters()], recipe)
    backbone, numerics = _training(backbone, profile, device)
    crops = MultiCrop(recipe, recipe.large_size or profile.image_size)
    images, indices = _images(batch, profile.image_size, device), torch.arange(batch, device=device)
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

    return _Step(lambda: crops(images), update)


def _clup_hparams(profile: Profile, setup: Setup | None = None) -> dict[str, Any]:
    """CluP's hyperparameters resolved at ``profile`` (and ``setup``)."""
    return registry.resolve_hparams(registry.get("clup"), setup.hparams if setup else {}, {}, profile)


def _clup_stem(profile: Profile, backbone: str) -> str:
    """The stem of CluP's target backbone ``backbone``: the SSL stem for an SSL backbone, else the profile's."""
    return (profile.ssl_stem or profile.stem) if backbone in ssl_names() else profile.stem


def _clup_step(profile: Profile, batch: int, device: torch.device) -> _Step:
    """A CluP stage-3 step (``methods.clup.train_on_pseudo_labels``): strong augmentation, mixup, SGD."""
    hp = _clup_hparams(profile)
    backbone, dim = build_backbone(profile.arch, _clup_stem(profile, hp["backbone"]), profile.width)
    model = Classifier(backbone, LinearHead(dim)).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=0.9, nesterov=True,
                                weight_decay=hp["weight_decay"])
    model, numerics = _training(model, profile, device)
    augment = strong_augmentation()
    images, labels = _images(batch, profile.image_size, device), torch.randint(0, NUM_CLASSES, (batch,), device=device)
    lam = 0.7  # mixup's mix: the cost does not depend on it

    def update(x: torch.Tensor) -> None:
        perm = torch.randperm(len(x), device=device)
        with numerics():
            loss = mixup_cross_entropy(model(lam * x + (1 - lam) * x[perm]), labels, labels[perm], lam)
        optimise(optimizer, loss)

    return _Step(lambda: standardise(augment(to_unit(images))), update)


def _crops(profile: Profile) -> str:
    """The SSL views in words, e.g. ``2x160 + 6x80``."""
    recipe = ssl_recipe(profile, TIMED_SSL)
    large = f"{recipe.large_crops}x{recipe.large_size or profile.image_size}"
    return large + (f" + {recipe.small_crops}x{recipe.small_size}" if recipe.small_crops else "")


def _describe(name: str, profile: Profile) -> tuple[str, int, str]:
    """(label, the profile's batch, stem) of training stage ``name``."""
    if name == "source":
        label = (f"source training step ({profile.arch}, {profile.stem} stem, {profile.image_size} px, "
                 f"{profile.source.augmentation} augmentation)")
        return label, profile.source.batch_size, profile.stem
    if name == "ssl":
        stem = profile.ssl_stem or profile.stem
        batch = ssl_recipe(profile, TIMED_SSL).batch_size
        return f"SSL step ({TIMED_SSL}, {stem} stem, {_crops(profile)})", batch, stem
    hp = _clup_hparams(profile)
    stem = _clup_stem(profile, hp["backbone"])
    return f"CluP step ({stem} stem, {profile.image_size} px, strong augmentation + mixup)", hp["batch_size"], stem


STEPS: dict[str, Callable[[Profile, int, torch.device], _Step]] = {
    "source": _source_step, "ssl": _ssl_step, "clup": _clup_step,
}


def time_training_stage(name: str, profile: Profile, device: torch.device) -> StageTime:
    """Time training stage ``name`` (``STEPS``): one warm-up step, then ``TIMED_STEPS``.

    On CUDA at the profile's batch, halved while it runs out of memory. On CPU from ``CPU_BATCH``, multiplied by 4
    (up to the profile's batch) while the warm-up step takes under ``CPU_STEP_SECONDS``: a cheap step is timed at
    a batch where per-step overheads do not dominate, an expensive one at a batch that fits the time.
    """
    label, batch, stem = _describe(name, profile)
    cpu = device.type == "cpu"
    timed, note = (min(batch, CPU_BATCH[name]) if cpu else batch), ""
    while True:
        try:
            step = STEPS[name](profile, timed, device)
            warm_up, _ = _time_step(step, device, 1)
            if cpu and timed < batch and warm_up < CPU_STEP_SECONDS:
                timed = min(batch, 4 * timed)
                continue
            seconds, augmentation = _time_step(step, device, TIMED_STEPS["cpu" if cpu else "cuda"])
            if cpu and timed < batch:
                note = f"timed at batch {timed} of {batch} on CPU, scaled per image"
            return StageTime(name, label, batch, timed, seconds, augmentation, stem, note)
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
    images = _images(n, profile.image_size, device)
    infer(model, images[: min(n, batch)], batch)  # warm-up
    _sync(device)
    start = time.perf_counter()
    infer(model, images, batch)
    _sync(device)
    note = f"{n} images on CPU, scaled per image" if n < batch else ""
    return StageTime("infer", f"feature extraction ({profile.stem} stem, {profile.image_size} px, batch {batch})",
                     n, n, time.perf_counter() - start, stem=profile.stem, note=note)


def time_kmeans(profile: Profile, device: torch.device) -> StageTime:
    """CluP stage 1's k-means (``methods.core.kmeans.kmeans``): K = ``KMEANS_K`` on ``KMEANS_ROWS`` random rows of
    the backbone's feature width, one timed call of ``KMEANS_ITERATIONS`` Lloyd iterations (on CPU of
    ``CPU_KMEANS_ITERATIONS``, scaled by iterations + 1: the final assignment costs one more pass)."""
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


def time_ssl_kmeans(profile: Profile, device: torch.device) -> StageTime:
    """One Lloyd iteration of DeepClusterV2's spherical k-means (plus its final assignment: 2 passes) on
    ``max(SSL_KMEANS_ROWS, prototypes)`` random unit rows; ``per_image`` is seconds per row and pass."""
    recipe = ssl_recipe(profile, "deepclusterv2")
    rows = max(SSL_KMEANS_ROWS, recipe.prototypes)
    x = F.normalize(torch.randn(rows, recipe.projector_out, device=device), dim=1)
    _sync(device)
    start = time.perf_counter()
    spherical_kmeans(x, recipe.prototypes, iterations=1, generator=torch.Generator().manual_seed(0))
    _sync(device)
    return StageTime("ssl_kmeans", f"DeepClusterV2 spherical k-means pass ({recipe.prototypes} prototypes, "
                     f"{rows:,} x {recipe.projector_out})", 2 * rows, 2 * rows, time.perf_counter() - start)


MEASURES: dict[str, Callable[[Profile, torch.device], StageTime]] = {
    "source": lambda p, d: time_training_stage("source", p, d),
    "ssl": lambda p, d: time_training_stage("ssl", p, d),
    "clup": lambda p, d: time_training_stage("clup", p, d),
    "infer": time_inference,
    "kmeans": time_kmeans,
    "ssl_kmeans": time_ssl_kmeans,
}


# --- projections -------------------------------------------------------------------------------------------------


def _train(stage: StageTime, epochs: int, n: int, batch: int) -> float:
    """Seconds of ``epochs`` passes over ``n`` images in steps of ``batch`` (last partial batch dropped; fewer
    images than a batch make one step of all of them, as ``methods.core.data.batch_indices`` does)."""
    per_epoch = n if n < batch else (n // batch) * batch
    return epochs * per_epoch * stage.per_image


def source_seconds(dataset: str, profile: Profile, stages: Stages) -> float:
    """Training the source model on ``dataset`` (``source`` stage) and scoring it on the test split."""
    train, test = split_sizes(dataset)
    recipe = profile.source
    return _train(stages["source"], recipe.epochs, train, recipe.batch_size) + test * stages["infer"].per_image


def ssl_seconds(ssl: str, dataset: str, profile: Profile, stages: Stages) -> float:
    """Pretraining ``ssl`` on ``dataset``'s train split: its steps (``ssl`` stage: every objective's step is taken
    to cost the timed one's; the backbone dominates), and for DeepClusterV2 its spherical k-means of every head at
    every epoch start (``kmeans_iterations`` + 1 passes over the bank)."""
    train, _ = split_sizes(dataset)
    recipe = ssl_recipe(profile, ssl)
    seconds = _train(stages["ssl"], recipe.epochs, train, recipe.batch_size)
    if ssl == "deepclusterv2":
        passes = recipe.epochs * DCV2_HEADS * (recipe.kmeans_iterations + 1)
        seconds += passes * train * stages["ssl_kmeans"].per_image
    return seconds


def _adaptation_seconds(
    method: str, hp: Mapping[str, Any], setup: Setup, profile: Profile, stages: Stages
) -> float | None:
    """The adaptation stage of a run of ``method`` on ``setup``'s target train split (None: not modelled).

    Steps through the source network cost the ``source`` stage's per image (SHOT, NRC, AaD and the adversarial
    methods use the mild augmentation where the paper's source recipe uses the strong one: the network
    dominates); DANN and CDAN see a source and a target batch per step; SHOT extracts features every epoch,
    NRC and AaD once (their bank); CluP extracts features and runs k-means once (scaled from the timed one by
    rows x clusters), then trains on the kept (1 - q) share with the ``clup`` stage (or the ``source`` stage when
    its backbone's stem is not the one timed).
    """
    train, _ = split_sizes(setup.target)
    source, infer_one = stages["source"], stages["infer"].per_image
    if method == "source_only":
        return 0.0
    if method == "oracle":
        return _train(source, profile.source.epochs, train, profile.source.batch_size)
    if method in ("shot", "shot_im"):
        refresh = hp["epochs"] * train * infer_one if hp["cls_par"] > 0 else 0.0
        return _train(source, hp["epochs"], train, hp["batch_size"]) + refresh
    if method in ("nrc", "aad"):
        return _train(source, hp["epochs"], train, hp["batch_size"]) + train * infer_one
    if method in ("dann", "cdan"):
        return 2 * _train(source, hp["epochs"], train, hp["batch_size"])
    if method == "clup":
        timed = stages["clup"]
        step = timed if _clup_stem(profile, hp["backbone"]) == timed.stem else source
        km = stages["kmeans"]
        clustering = km.seconds * (train / km.timed_batch) * (hp["clusters"] / KMEANS_K)
        kept = round((1 - hp["q"]) * train)
        return train * infer_one + clustering + _train(step, hp["epochs"], kept, hp["batch_size"])
    if method.startswith("probe:"):
        return 0.0  # features of both splits, below; the logistic regression itself is not modelled
    return None


def job_seconds(method: str, hp: Mapping[str, Any], setup: Setup, profile: Profile, stages: Stages) -> float | None:
    """A run (or probe) of ``method`` with hyperparameters ``hp`` on ``setup``, without building its artifacts:
    adaptation, then features of the target test and train splits (accuracy and validators). None: the method's
    cost is not modelled. Probes of SSL backbones are costed with the source network's extraction speed."""
    adaptation = _adaptation_seconds(method, hp, setup, profile, stages)
    if adaptation is None:
        return None
    train, test = split_sizes(setup.target)
    return adaptation + (train + test) * stages["infer"].per_image


def paper_projections(profile: Profile, stages: Stages) -> list[Projection]:
    """The paper's jobs at ``profile``: each source model, each SSL pretraining on each target, and CluP and SHOT
    on each paper setup."""
    setups = [get_setup(name) for name in PAPER_SETUPS]
    rows = [Projection(f"source model on {d}", split_sizes(d)[0], profile.source.epochs,
                       source_seconds(d, profile, stages)) for d in dict.fromkeys(s.source for s in setups)]
    rows += [Projection(f"{ssl} pretraining on {d}", split_sizes(d)[0], ssl_recipe(profile, ssl).epochs,
                        ssl_seconds(ssl, d, profile, stages))
             for ssl in ssl_names() for d in dict.fromkeys(s.target for s in setups)]
    for setup in setups:
        for method in ("clup", "shot"):
            hp = registry.resolve_hparams(registry.get(method), setup.hparams, {}, profile)
            name = f"{method} on {setup.name}" + (f" (backbone {hp['backbone']})" if method == "clup" else "")
            rows.append(Projection(name, split_sizes(setup.target)[0], hp["epochs"],
                                   job_seconds(method, hp, setup, profile, stages)))
    return rows


# --- the command -------------------------------------------------------------------------------------------------


def run_bench(profile_name: str = "paper", device: str = "auto") -> BenchResult:
    """Time every stage of ``MEASURES`` at ``profile_name`` on ``device``, project the paper's jobs, and save the
    result (``save_bench``)."""
    profile = resolve_profile(profile_name)
    torch_device = resolve_device(device)
    torch.manual_seed(0)
    load_average = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    stages: dict[str, StageTime] = {}
    with progress_bar() as bar:
        task = bar.add_task(f"bench {profile.name}", total=len(MEASURES))
        for name, measure in MEASURES.items():
            bar.update(task, description=f"bench {profile.name}: {name}")
            stages[name] = measure(profile, torch_device)
            bar.advance(task)
    result = BenchResult(
        profile=profile.name, device=str(torch_device), device_name=device_name(torch_device),
        slug=device_slug(torch_device), threads=torch.get_num_threads(), torch=torch.__version__,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=round(time.perf_counter() - started, 1), backbone=figures_key(profile), stages=stages,
        projections=paper_projections(profile, stages), load_average=load_average,
    )
    save_bench(result, torch_device)
    return result


def format_duration(seconds: float | None) -> str:
    """``12 s``, ``3.5 min``, ``4.2 h`` or ``3.1 d``; ``unknown`` for None."""
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _stage_row(stage: StageTime) -> str:
    """One line of the stage table: images/s for the steps and extraction, seconds for the k-means stages."""
    clustering = stage.name in ("kmeans", "ssl_kmeans")
    rate = "-" if clustering else f"{stage.images_per_second:.1f}"
    timed = "-" if clustering else f"{stage.timed_batch}/{stage.batch}"
    share = "-" if stage.augmentation_share is None else f"{stage.augmentation_share:.0%}"
    return f"{stage.label:<76} {timed:>8} {rate:>9} {format_duration(stage.profile_step_seconds):>10} {share:>12}"


def format_bench(result: BenchResult, path: Path | None = None) -> str:
    """The stage table and the projected paper jobs, as ``bench`` prints them."""
    steps = TIMED_STEPS["cuda" if result.device.startswith("cuda") else "cpu"]
    load = "" if result.load_average is None else f", load average {result.load_average:.1f} before the run"
    title = (f"bench: profile {result.profile} on {result.device} ({result.device_name}, {result.threads} threads"
             f"{load}), torch {result.torch}; 1 warm-up + {steps} timed step(s) per training stage; "
             f"{result.wall_seconds:.0f} s in all")
    lines = [title, "",
             f"{'stage':<76} {'batch':>8} {'images/s':>9} {'step/call':>10} {'augmentation':>12}",
             *(_stage_row(stage) for stage in result.stages.values())]
    notes = [f"  {stage.name}: {stage.note}" for stage in result.stages.values() if stage.note]
    if notes:
        lines += ["", "scaled figures (a step's cost per image is taken as constant in the batch size):", *notes]
    lines += ["", f"projected wall time of the paper's jobs at profile {result.profile} on this device (one seed):",
              f"{'job':<44} {'images':>8} {'epochs':>7} {'wall time':>10}"]
    lines += [f"{row.name:<44} {row.images:>8,} {row.epochs:>7} {format_duration(row.seconds):>10}"
              for row in result.projections]
    total = sum(row.seconds or 0.0 for row in result.projections)
    lines.append(f"{'total':<44} {'':>8} {'':>7} {format_duration(total):>10}")
    if path is not None:
        lines += ["", f"saved to {path}"]
    return "\n".join(lines)

"""The source model: trained once per (source dataset, profile, seed) and cached as an artifact.

Every method adapts the same source model, so differences between methods come from adaptation only.
The artifact holds ``model.pt`` (a state dict, loaded with ``weights_only=True``) and ``info.json``
(the key, the source test evaluation, the training time and the seeds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.config.numerics import ensure_numerics
from benchmark.config.paths import imagenet_weights
from benchmark.config.profiles import Profile
from benchmark.services.artifacts import get_or_build, load_model, save_model
from datasets import registry
from datasets.cache import load_split, read_manifest
from datasets.progress import log
from methods.core.data import resize_to_tensor
from methods.core.evaluation import evaluate
from methods.core.models import Classifier, build_classifier
from methods.core.precision import prepare_for_training, training_numerics
from methods.core.seeding import derive_seed, seed_everything
from methods.core.training import train_supervised

#: Bump when source training changes in a way that changes its result; old artifacts are then not reused.
SOURCE_CODE_VERSION = 3  # 3: the strong views' colour jitter is FastColorJitter


@dataclass(frozen=True)
class SplitTensors:
    """A labelled split resized to a profile: images (N, C, S, S) uint8 on the device, labels (N,) int64 (CPU), and
    the cache's hashes of its images and labels files."""

    images: torch.Tensor
    labels: np.ndarray
    manifest_sha256: str
    labels_sha256: str


def split_tensors(dataset: str, split: str, profile: Profile, device: torch.device) -> SplitTensors:
    """Load ``dataset``/``split`` from the cache (preparing it if needed) at the profile's input size."""
    cache = registry.ensure(dataset)
    data = load_split(cache, split)
    manifest = read_manifest(cache)
    return SplitTensors(
        images=resize_to_tensor(data.images, profile.image_size, device),
        labels=np.asarray(data.labels),
        manifest_sha256=manifest["splits"][split]["images_sha256"],
        labels_sha256=manifest["splits"][split]["labels_sha256"],
    )


@dataclass
class SourceModel:
    """A trained source classifier and its artifact."""

    model: Classifier
    path: Path
    info: dict[str, Any]


def source_key(dataset: str, profile: Profile, seed: int, train: dict[str, Any], weights: Path | None) -> dict[str, Any]:
    """The source model's artifact key: the train split's images and labels (``train``: its manifest entry), the
    backbone, numerics, recipe, ImageNet weights file, seed and code version."""
    return {
        "dataset": dataset,
        "train_images_sha256": train["images_sha256"],
        "train_labels_sha256": train["labels_sha256"],
        **profile.backbone_fields(),
        **profile.numerics_fields(),
        "recipe": asdict(profile.source),
        "imagenet_weights": None if weights is None else weights.name,
        "seed": seed,
        "code_version": SOURCE_CODE_VERSION,
    }


def _new_model(profile: Profile, weights: Path | None) -> Classifier:
    return build_classifier(profile.arch, profile.stem, profile.width, profile.source.head, weights)


def get_source_model(dataset: str, profile: Profile, seed: int, device: torch.device) -> SourceModel:
    """The source model of ``dataset`` at ``profile`` and ``seed``, trained now if not cached.

    Training seed: ``derive_seed("source", dataset, seed)``. The source **test** split is used only to
    report the source accuracy, never to select anything.
    """
    ensure_numerics(profile.numerics)
    weights = imagenet_weights(profile)
    train = read_manifest(registry.ensure(dataset))["splits"]["train"]
    key = source_key(dataset, profile, seed, train, weights)

    def build(out: Path) -> None:
        train_seed = derive_seed("source", dataset, seed)
        generator = seed_everything(train_seed)
        model = prepare_for_training(_new_model(profile, weights).to(device), profile)
        train = split_tensors(dataset, "train", profile, device)
        labels = torch.from_numpy(train.labels).to(device)
        log(f"training the source model on {dataset} ({len(labels)} images, profile {profile.name}, seed {seed})")
        with training_numerics(profile, device):
            stats = train_supervised(model, train.images, labels, profile.source, generator, f"source {dataset}")
        test = split_tensors(dataset, "test", profile, device)
        result = evaluate(model, test.images, test.labels, profile.eval_batch_size)
        info = {**key, "train_seed": train_seed, "device": str(device), "train": stats, "source_test": result.as_record()}
        save_model(out, "model.pt", model, key, info)

    path, built = get_or_build("source", key, build)
    model = _new_model(profile, None)
    info = load_model(path, "model.pt", model, built)
    return SourceModel(model=model.to(device), path=path, info=info)

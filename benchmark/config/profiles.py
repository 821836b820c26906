"""Profiles: the scale at which the same pipeline runs.

``paper`` is the CluP paper's setting (ResNet-18, 160 px, ImageNet stem, full width). ``quick`` is the same
pipeline scaled so that a whole run fits in minutes on a 2-core CPU: a quarter-width ResNet-18 (16
first-stage channels) on 64 px inputs with the ImageNet stem (measured here: about 700 training images/s
on 2 cores, 2.5x the small stem on 32 px at the same width). Every value here is written into the run record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from benchmark.config.errors import UserError


@dataclass(frozen=True)
class SourceRecipe:
    """Supervised training of the source model (SHOT's recipe; docs/METHODS.md).

    Attributes:
        epochs: passes over the source train split.
        batch_size: images per step.
        lr: learning rate of the bottleneck and classifier at step 0.
        backbone_lr_mult: backbone lr = ``lr * backbone_lr_mult`` (SHOT: 0.1 with ImageNet weights).
        momentum, weight_decay, nesterov: SGD settings.
        label_smoothing: cross-entropy smoothing.
        schedule_gamma, schedule_power: lr_t = lr * (1 + gamma * t / T) ** -power, updated every step.
    """

    epochs: int
    batch_size: int = 64
    lr: float = 1e-2
    backbone_lr_mult: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    nesterov: bool = True
    label_smoothing: float = 0.1
    schedule_gamma: float = 10.0
    schedule_power: float = 0.75


@dataclass(frozen=True)
class SSLRecipe:
    """Self-supervised pretraining of the target backbone: the fields every objective shares (docs/SSL.md).

    An objective declares its own fields, with their defaults, in a frozen subclass of this class (its
    ``recipe_type``: ``SwAVRecipe`` in ``methods/ssl/swav.py``, ``DeepClusterV2Recipe`` in
    ``methods/ssl/deepclusterv2.py``); ``methods.ssl.registry.ssl_recipe(profile, name)`` gives an objective's
    effective recipe at a profile.

    Attributes:
        epochs: passes over the target train split.
        batch_size: images per step (each seen as ``large_crops`` + ``small_crops`` views).
        lr: peak SGD learning rate (after ``warmup_epochs`` of linear warm-up; cosine to 0, per step).
        optimizer: ``lars`` (SwAV's and solo-learn's: SGD + layer-wise trust ratio ``lars_eta``, biases and
            norms excluded) or ``sgd`` (plain SGD, the CluP paper's words).
        lars_eta: LARS trust coefficient.
        momentum, weight_decay: SGD settings.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        prototypes: P, prototypes per head (SwAV: one head; DeepClusterV2: 3 heads of P k-means centroids).
        projector_hidden, projector_out: the projector MLP's hidden and output widths.
        large_crops, small_crops: number of views per image at ``image_size`` and ``small_size``.
        large_size: side of the large crops in pixels; None = the profile's image size.
        small_size: side of the small crops in pixels.
        large_scale, small_scale: RandomResizedCrop area ranges of the two crop sizes.
        temperature: softmax temperature of the swapped prediction / cluster cross-entropy.
        checkpoint_every: epochs between resumable training checkpoints.
    """

    epochs: int
    batch_size: int = 256
    lr: float = 0.6
    optimizer: str = "lars"
    lars_eta: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-6
    warmup_epochs: float = 10.0
    prototypes: int = 3000
    projector_hidden: int = 2048
    projector_out: int = 128
    large_crops: int = 2
    small_crops: int = 6
    large_size: int | None = None
    small_size: int = 80
    large_scale: tuple[float, float] = (0.14, 1.0)
    small_scale: tuple[float, float] = (0.05, 0.14)
    temperature: float = 0.1
    checkpoint_every: int = 10


@dataclass(frozen=True)
class Profile:
    """Model and training scale of a run.

    Attributes:
        name: ``quick`` or ``paper``.
        arch: torchvision ResNet name (``resnet18`` or ``resnet50``).
        stem: ``imagenet`` (7x7 s2 + max-pool), ``small`` (3x3 s1, no max-pool) or ``clup`` (7x7 s1 p2,
            no max-pool: the CluP authors' SSL checkpoints).
        width: channels of the first stage (64 = torchvision's ResNet; smaller is faster).
        image_size: side in pixels that images are resized to before the network.
        head: ``shot`` (bottleneck 256 + BN + weight-normalised linear) or ``linear``.
        imagenet_init: start the source backbone from ImageNet weights (a local file; see models.py).
        source: the source-training recipe.
        ssl: the self-supervised pretraining recipe's shared fields (those of every objective).
        ssl_overrides: per-objective values, ``{ssl name: {field: value}}`` (solo-learn keeps one config per
            method too): departures from ``ssl`` and values of the objective's own fields (declared with their
            defaults by the objective). Plain values: ``methods.ssl.registry.ssl_recipe(profile, name)`` resolves
            them (shared values, then the objective's defaults, then these).
        eval_batch_size: images per forward pass in evaluation and feature extraction.
        hparams: method hyperparameters this profile scales, ``{method or "*": {name: value}}`` (applied
            after the method's defaults and before the setup's and the user's values).
    """

    name: str
    arch: str
    stem: str
    width: int
    image_size: int
    head: str
    imagenet_init: bool
    source: SourceRecipe
    ssl: SSLRecipe = field(default_factory=lambda: SSLRecipe(epochs=1000))
    ssl_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_batch_size: int = 512
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    def backbone_fields(self) -> dict[str, Any]:
        """The fields that determine the backbone's architecture and input (part of every artifact key)."""
        return {"arch": self.arch, "stem": self.stem, "width": self.width, "image_size": self.image_size}

    def as_record(self) -> dict[str, Any]:
        """Every value of the profile, JSON-ready (stored in run records as ``profile_values``). The SSL values are
        the profile's own (``ssl`` and ``ssl_overrides``); an objective's declared defaults are not among them
        (``methods.ssl.registry.recipe_record`` gives an objective's whole recipe)."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        arch="resnet18",
        stem="imagenet",
        width=64,
        image_size=160,
        head="shot",
        imagenet_init=True,
        source=SourceRecipe(epochs=20),
        ssl=SSLRecipe(epochs=1000),
    ),
    # Why: docs/LAB_NOTES.md, "Random init and the backbone lr multiplier".
    "quick": Profile(
        name="quick",
        arch="resnet18",
        stem="imagenet",
        width=16,
        image_size=64,
        head="shot",
        imagenet_init=False,
        source=SourceRecipe(epochs=15, lr=5e-2, backbone_lr_mult=1.0, weight_decay=5e-4),
        # Why: docs/LAB_NOTES.md, "The quick profile's SSL recipe".
        ssl=SSLRecipe(
            epochs=16, batch_size=128, lr=0.3, warmup_epochs=1.0, prototypes=100, projector_hidden=512,
            small_crops=0, large_size=48, large_scale=(0.3, 1.0), checkpoint_every=2,
        ),
        ssl_overrides={
            "swav": {"freeze_prototypes_epochs": 1, "queue_length": 0, "sinkhorn_epsilon": 0.02},
            # Why: docs/LAB_NOTES.md, "DeepClusterV2's quick epochs".
            "deepclusterv2": {"epochs": 30},
        },
        hparams={
            "shot": {"epochs": 5},
            "shot_im": {"epochs": 5},
            "nrc": {"epochs": 5},
            "aad": {"epochs": 5},
            "dann": {"epochs": 5},
            "cdan": {"epochs": 5},
            "clup": {"epochs": 15, "batch_size": 64},
        },
    ),
}
# Why: docs/LAB_NOTES.md, "The tiny profile".
PROFILES["tiny"] = replace(
    PROFILES["quick"],
    name="tiny",
    width=8,
    image_size=32,
    source=replace(PROFILES["quick"].source, epochs=1),
    ssl=replace(PROFILES["quick"].ssl, epochs=1, batch_size=256, prototypes=20, projector_hidden=64, large_size=None),
    ssl_overrides={"swav": PROFILES["quick"].ssl_overrides["swav"]},  # DeepClusterV2 at the shared 1 epoch too
    hparams={"*": {"epochs": 1, "batch_size": 256}},
)


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a UserError listing the known ones otherwise."""
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]

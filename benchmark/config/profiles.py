"""Profiles: the scale at which the same pipeline runs.

``paper`` is the CluP paper's setting (ResNet-18, 160 px, ImageNet stem, full width). ``quick`` is the same
pipeline scaled so that a whole run fits in minutes on a 2-core CPU: a quarter-width ResNet-18 (16
first-stage channels) on 64 px inputs with the ImageNet stem (measured here: about 700 training images/s
on 2 cores, 2.5x the small stem on 32 px at the same width). ``quick10`` is ``quick`` on ResNet-10, the
synthetic default's profile; ``tiny`` is for tests. Every value here is written into the run record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from benchmark.config.errors import UserError


@dataclass(frozen=True)
class SourceRecipe:
    """Supervised training of the source model (docs/METHODS.md, "The source model"). The named recipes are
    ``SOURCE_RECIPES``: ``shot`` (SHOT's), ``authors`` (the CluP authors'), ``dann`` and ``cdan`` (SHOT's
    training on the adversarial releases' networks).

    Attributes:
        name: the recipe it started from (a key of ``SOURCE_RECIPES``; recorded, not used in training).
        epochs: passes over the source train split.
        head: ``shot`` (bottleneck 256 + BN + weight-normalised linear), ``linear`` or ``linear_wn``
            (a weight-normalised Linear(D -> 7), the CluP authors' ``--weight_norm``), ``dann`` (TLlib's DANN:
            bottleneck 256 + BN + ReLU + linear) or ``cdan`` (thuml/CDAN's: bottleneck 256 + linear).
        batch_size: images per step.
        lr: learning rate of the bottleneck and classifier at step 0.
        backbone_lr_mult: backbone lr = ``lr * backbone_lr_mult`` (SHOT: 0.1 with ImageNet weights).
        momentum, weight_decay, nesterov: SGD settings.
        label_smoothing: cross-entropy smoothing.
        schedule: ``shot`` (lr_t = lr * (1 + gamma * t / T) ** -power, per step) or ``exponential``
            (lr_e = lr * exp_gamma ** e, per epoch: torch's ExponentialLR).
        schedule_gamma, schedule_power: the ``shot`` schedule's constants.
        exp_gamma: the ``exponential`` schedule's factor per epoch.
        augmentation: ``mild`` (flip + small affine) or ``strong`` (CluP's: flip, affine 35 deg / 0.15,
            colour jitter).
        grey_probability: each training view is turned greyscale (ITU-R 601 luminance, replicated to 3 channels)
            with this probability, per image, drawn from torch's global RNG (0 = never; no draw at all).
        ema_decay: 0 = off; else an exponential moving average of parameters and buffers
            (``torch.optim.swa_utils.AveragedModel``, updated after every step) is the trained model.
    """

    epochs: int
    name: str = "shot"
    head: str = "shot"
    batch_size: int = 64
    lr: float = 1e-2
    backbone_lr_mult: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    nesterov: bool = True
    label_smoothing: float = 0.1
    schedule_gamma: float = 10.0
    schedule_power: float = 0.75
    schedule: str = "shot"
    exp_gamma: float = 0.99
    augmentation: str = "mild"
    grey_probability: float = 0.0
    ema_decay: float = 0.0


#: The named source recipes (``--set source=authors`` starts from one; docs/METHODS.md, "The source model").
SOURCE_RECIPES: dict[str, SourceRecipe] = {
    "shot": SourceRecipe(epochs=20),
    # The CluP authors' README command: SGD at lr 0.01 on every layer (torch's defaults: no momentum, no weight
    # decay), label smoothing 0.1, ExponentialLR(0.99), 100 epochs, --weight_norm, their training augmentation.
    "authors": SourceRecipe(
        epochs=100, name="authors", head="linear_wn", lr=1e-2, backbone_lr_mult=1.0, momentum=0.0, weight_decay=0.0,
        nesterov=False, label_smoothing=0.1, schedule="exponential", exp_gamma=0.99, augmentation="strong",
    ),
    # DANN and CDAN train from ImageNet on source and target at once in their releases (TLlib, thuml/CDAN); here
    # they start from a source model of their own network trained as SHOT's is, with the plain cross-entropy of
    # their source loss (docs/METHODS.md, "Networks and source recipes").
    "dann": SourceRecipe(epochs=20, name="dann", head="dann", label_smoothing=0.0),
    "cdan": SourceRecipe(epochs=20, name="cdan", head="cdan", label_smoothing=0.0),
}


#: SwAV's probability of blurring a view.
DEFAULT_BLUR_PROBABILITY = 0.5

#: Fields added after records were first written, with the value every earlier job had without saying so. A profile
#: or recipe record holds such a field only when it differs from that value, so the records and keys of the jobs
#: made before the field existed did not move (docs/PROTOCOL.md, "Job identity").
KEY_STABLE_DEFAULTS: dict[str, Any] = {
    "numerics": "native",
    "source_per_method": False,
    "blur_probability": DEFAULT_BLUR_PROBABILITY,
}


def omit_key_stable_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a profile or recipe record) without the ``KEY_STABLE_DEFAULTS`` fields at their default (in place;
    returned)."""
    for name, default in KEY_STABLE_DEFAULTS.items():
        if name in values and values[name] == default:
            del values[name]
    return values


@dataclass(frozen=True)
class SSLRecipe:
    """Self-supervised pretraining of the target backbone: the fields every objective shares (docs/SSL.md).

    An objective declares its own fields, with their defaults, in a frozen subclass of this class (its
    ``recipe_type``: ``SwAVRecipe`` in ``methods/ssl/swav.py``, ``DeepClusterV2Recipe`` in
    ``methods/ssl/deepclusterv2.py``); ``methods.ssl.ssl_registry.ssl_recipe(profile, name)`` gives an objective's
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
        blur_probability: probability of the Gaussian blur of each view (SwAV's 0.5; 0 = no blur).
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
    blur_probability: float = DEFAULT_BLUR_PROBABILITY
    temperature: float = 0.1
    checkpoint_every: int = 10


@dataclass(frozen=True)
class Profile:
    """Model and training scale of a run.

    Attributes:
        name: its key in ``PROFILES`` (``paper``, ``quick``, ``quick10`` or ``tiny``).
        arch: ``resnet10`` (ResNet-18 with one block per stage), ``resnet18`` or ``resnet50`` (torchvision's).
        stem: the source model's stem: ``imagenet`` (7x7 s2 + max-pool), ``small`` (3x3 s1, no max-pool) or
            ``clup`` (7x7 s1 p2, no max-pool: the CluP authors' SSL checkpoints).
        ssl_stem: the stem of the self-supervised (target) backbones; None = ``stem``.
        width: channels of the first stage (64 = torchvision's ResNet; smaller is faster).
        image_size: side in pixels that images are resized to before the network.
        imagenet_init: start the source backbone from ImageNet weights (a local file; see models.py).
        source: the source-training recipe (of every method when ``source_per_method`` is False).
        source_per_method: each method adapts a source model trained with its release's recipe
            (``Method.source_recipe``, a name of ``SOURCE_RECIPES``; a method that names none gets ``source``).
            False: every method adapts the same source model (``source``), an identical start. Written into
            records and keys only when True, so the keys of the other profiles are those made before it existed.
        ssl: the self-supervised pretraining recipe's shared fields (those of every objective).
        ssl_overrides: per-objective values, ``{ssl name: {field: value}}`` (solo-learn keeps one config per
            method too): departures from ``ssl`` and values of the objective's own fields (declared with their
            defaults by the objective). Plain values: ``methods.ssl.ssl_registry.ssl_recipe(profile, name)`` resolves
            them (shared values, then the objective's defaults, then these).
        eval_batch_size: images per forward pass in evaluation and feature extraction.
        hparams: method hyperparameters this profile scales, ``{method or "*": {name: value}}`` (applied
            after the method's defaults and before the setup's and the user's values).
        precision: ``fp32``, ``bf16`` (bf16 autocast on any device) or ``auto`` (bf16 on CUDA, fp32 elsewhere).
        channels_last: train convolutions in the channels-last memory format.
        compile: ``torch.compile`` the training forward passes.
        numerics: ``native`` (each library's fastest kernels for this CPU) or ``portable`` (every library capped
            to AVX2 at one thread: the same digits on any x86-64 CPU with AVX2; docs/NUMERICS.md). Written into
            records, artifact and job keys only when not ``native``, so native keys are those made before it.
        overrides: the dotted overrides applied to the named profile (``benchmark.config.overrides``; recorded,
            and already reflected in the other fields).
    """

    name: str
    arch: str
    stem: str
    width: int
    image_size: int
    imagenet_init: bool
    source: SourceRecipe
    source_per_method: bool = False
    ssl: SSLRecipe = field(default_factory=lambda: SSLRecipe(epochs=1000))
    ssl_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_batch_size: int = 512
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    ssl_stem: str | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    numerics: str = "native"
    overrides: dict[str, Any] = field(default_factory=dict)

    def backbone_fields(self) -> dict[str, Any]:
        """The fields that determine the source backbone's architecture and input (part of every artifact key)."""
        return {"arch": self.arch, "stem": self.stem, "width": self.width, "image_size": self.image_size}

    def ssl_backbone_fields(self) -> dict[str, Any]:
        """``backbone_fields`` of the self-supervised target backbones (their stem is ``ssl_stem``)."""
        return {**self.backbone_fields(), "stem": self.ssl_stem or self.stem}

    def numerics_fields(self) -> dict[str, Any]:
        """How training runs on the device (precision, memory format, compilation and, when not native, the
        numerics mode): part of every artifact key."""
        return omit_key_stable_defaults({"precision": self.precision, "channels_last": self.channels_last,
                                         "compile": self.compile, "numerics": self.numerics})

    def as_record(self) -> dict[str, Any]:
        """Every value of the profile, JSON-ready (stored in run records as ``profile_values``). The SSL values are
        the profile's own (``ssl`` and ``ssl_overrides``); an objective's declared defaults are not among them
        (``methods.ssl.ssl_registry.recipe_record`` gives an objective's whole recipe); the ``KEY_STABLE_DEFAULTS``
        fields (``numerics``, ``source_per_method``, ``ssl.blur_probability``) only when not at their default."""
        record = omit_key_stable_defaults(asdict(self))
        omit_key_stable_defaults(record["ssl"])
        return record


PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        arch="resnet18",
        stem="imagenet",
        width=64,
        image_size=160,
        imagenet_init=True,
        # Why each value: docs/PAPER.md, "The paper profile". Each method on its release's source recipe
        # (docs/METHODS.md, "Networks and source recipes"); ``authors`` for those that name none.
        source=SOURCE_RECIPES["authors"],
        source_per_method=True,
        ssl=SSLRecipe(epochs=1000),
        ssl_overrides={"swav": {"prototypes": 5000}},
        ssl_stem="clup",
        hparams={
            "clup": {"backbone": "swav", "kmeans_iters": 20, "kmeans_restarts": 1, "kmeans_init": "random"},
            # Each release's gradient-reversal ramp (docs/METHODS.md): TLlib's DANN, thuml/CDAN's calc_coeff.
            "dann": {"grl_alpha": 1.0, "grl_horizon": 1000},
            "cdan": {"grl_horizon": 10000},
        },
        precision="auto",
        channels_last=True,
    ),
    # Why: docs/LAB_NOTES.md, "Random init and the backbone lr multiplier".
    "quick": Profile(
        name="quick",
        arch="resnet18",
        stem="imagenet",
        width=16,
        image_size=64,
        imagenet_init=False,
        # grey views: docs/LAB_NOTES.md, "Source-model stability over seeds".
        source=SourceRecipe(epochs=15, lr=5e-2, backbone_lr_mult=1.0, weight_decay=5e-4, grey_probability=0.5),
        # Why: docs/LAB_NOTES.md, "The quick profile's SSL recipe".
        ssl=SSLRecipe(
            epochs=16, batch_size=128, lr=0.3, warmup_epochs=1.0, prototypes=100, projector_hidden=512,
            small_crops=0, large_size=48, large_scale=(0.3, 1.0), checkpoint_every=2,
        ),
        ssl_overrides={
            # Crops of 70-100% without blur: chosen on synth-wild val probes (docs/LAB_NOTES.md, "Why the target
            # SSL features are weak here").
            "swav": {"freeze_prototypes_epochs": 1, "queue_length": 0, "sinkhorn_epsilon": 0.02,
                     "large_scale": (0.7, 1.0), "blur_probability": 0.0},
            # Why: docs/LAB_NOTES.md, "DeepClusterV2's quick epochs".
            "deepclusterv2": {"epochs": 30},
        },
        # Why: docs/PERFORMANCE.md, "The quick profile's speed".
        channels_last=True,
        hparams={
            "shot": {"epochs": 5},
            "shot_im": {"epochs": 5},
            "nrc": {"epochs": 5},
            "aad": {"epochs": 5},
            # Half the synthetic target train split, within the published queue-to-dataset ratios (docs/METHODS.md).
            "adacontrast": {"epochs": 5, "queue_size": 4096},
            "dann": {"epochs": 5},
            "cdan": {"epochs": 5},
            "clup": {"epochs": 15, "batch_size": 64},
        },
    ),
}
# ``quick`` on ResNet-10 (one block per stage): 1.7x the training throughput at the same calibration, chosen on
# val; the synthetic default's profile. Why: docs/LAB_NOTES.md, "ResNet-10 for the synthetic default".
PROFILES["quick10"] = replace(PROFILES["quick"], name="quick10", arch="resnet10")
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

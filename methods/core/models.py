"""Networks: torchvision ResNet backbones (stem and width options) and the two classifier heads.

A classifier is ``backbone -> head``; the SHOT head is ``bottleneck (Linear 256 + BatchNorm1d) ->
weight-normalised Linear``, the linear head a single Linear. Backbone state-dict keys stay torchvision's
(``conv1.weight``, ``layer1.0...``), so torchvision and solo-learn weights load by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock, ResNet

from benchmark.config.errors import CheckpointError, UserError
from benchmark.config.paths import imagenet_weights
from benchmark.config.profiles import Profile
from datasets.labels import NUM_CLASSES
from methods.core.checkpoints import load_state_dict

# ResNet-10 is ResNet-18 with one basic block per stage instead of two; torchvision has no builder for it.
ARCHS = {"resnet10": partial(ResNet, BasicBlock, [1, 1, 1, 1]), "resnet18": resnet18, "resnet50": resnet50}
STEMS = ("imagenet", "small", "clup")
BOTTLENECK_DIM = 256


def _replace_stem(net: ResNet, stem: str, width: int) -> None:
    if stem == "imagenet":
        net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    elif stem == "small":  # solo-learn's CIFAR stem (note: padding 2, as solo-learn has it)
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()
    elif stem == "clup":  # the CluP authors' released SSL checkpoints
        net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()
    else:
        raise UserError(f"unknown stem {stem!r}; known: {', '.join(STEMS)}")
    net.bn1 = nn.BatchNorm2d(width)


def _rescale_width(net: ResNet, width: int) -> None:
    """Rebuild the four stages with ``width, 2w, 4w, 8w`` channels using torchvision's own ``_make_layer``."""
    block = type(net.layer1[0])
    depths = [len(net.layer1), len(net.layer2), len(net.layer3), len(net.layer4)]
    net.inplanes = width
    net.layer1 = net._make_layer(block, width, depths[0])
    net.layer2 = net._make_layer(block, width * 2, depths[1], stride=2)
    net.layer3 = net._make_layer(block, width * 4, depths[2], stride=2)
    net.layer4 = net._make_layer(block, width * 8, depths[3], stride=2)


def check_backbone_state(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise a CheckpointError, prefixed by ``where``, unless ``state`` has exactly ``expected``'s tensors
    (``fc.`` may be absent) with the same shapes; then ``load_state_dict(state, strict=True)`` cannot fail."""
    missing = [k for k in expected if k not in state and not k.startswith("fc.")]
    if missing:
        raise CheckpointError(
            f"{where}: {len(missing)} backbone tensor(s) missing from the checkpoint: {missing[:5]}"
            + (" ..." if len(missing) > 5 else "")
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(
            f"{where}: {len(unexpected)} unexpected backbone tensor(s) in the checkpoint: {unexpected[:5]}"
            + (" ..." if len(unexpected) > 5 else "")
        )
    for key, tensor in expected.items():
        if key in state and state[key].shape != tensor.shape:
            raise CheckpointError(
                f"{where}: shape mismatch at {key!r}: checkpoint {tuple(state[key].shape)}, "
                f"model {tuple(tensor.shape)}"
            )


def build_backbone(
    arch: str = "resnet18", stem: str = "imagenet", width: int = 64, weights: str | Path | None = None
) -> tuple[nn.Module, int]:
    """A torchvision ResNet without its ``fc`` (replaced by Identity).

    Args:
        arch: a key of ``ARCHS`` (``resnet10``, ``resnet18`` or ``resnet50``).
        stem: see ``STEMS``.
        width: channels of the first stage; 64 is torchvision's network.
        weights: optional local state-dict file (e.g. torchvision's ImageNet ``resnet18-*.pth``); loaded with
            ``weights_only=True``. Nothing is downloaded.

    Returns:
        (backbone mapping (B, 3, H, W) float -> (B, D) features, D).
    """
    if arch not in ARCHS:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    net = ARCHS[arch]()
    if width != 64:
        _rescale_width(net, width)
    _replace_stem(net, stem, width)
    for module in net.modules():  # torchvision's init, re-applied to the replaced layers
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    feature_dim = net.fc.in_features if width == 64 else width * 8 * type(net.layer1[0]).expansion
    net.fc = nn.Identity()
    if weights is not None:
        state = load_state_dict(weights)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        check_backbone_state(state, net.state_dict(), f"{weights}: does not match {arch} (stem {stem}, width {width})")
        net.load_state_dict(state, strict=True)
    return net, feature_dim


class ShotHead(nn.Module):
    """SHOT's head: Linear(D -> 256, Xavier-normal, zero bias) -> BatchNorm1d(256) -> weight-normed Linear(256 -> C)."""

    def __init__(self, in_dim: int, num_classes: int = NUM_CLASSES, bottleneck_dim: int = BOTTLENECK_DIM) -> None:
        super().__init__()
        linear = nn.Linear(in_dim, bottleneck_dim)
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        self.bottleneck = nn.Sequential(linear, nn.BatchNorm1d(bottleneck_dim))
        self.classifier = weight_norm(nn.Linear(bottleneck_dim, num_classes))
        self.feature_dim = bottleneck_dim

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) backbone features -> (B, 256) bottleneck features."""
        return self.bottleneck(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(features))


class LinearHead(nn.Module):
    """A single Linear(D -> C), weight-normalised when ``weight_normalised`` (the CluP authors' source head with
    their ``--weight_norm``); ``embed`` is the identity."""

    def __init__(self, in_dim: int, num_classes: int = NUM_CLASSES, weight_normalised: bool = False) -> None:
        super().__init__()
        linear = nn.Linear(in_dim, num_classes)
        self.classifier = weight_norm(linear) if weight_normalised else linear
        self.feature_dim = in_dim

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class BottleneckHead(nn.Module):
    """The adversarial releases' heads: Linear(D -> 256) [-> BatchNorm1d -> ReLU] -> Linear(256 -> C).

    ``batch_norm_relu`` True: TLlib's DANN ``ImageClassifier`` (PyTorch's default init); False: CDAN's ``ResNetFc``
    (bottleneck weights N(0, 0.005), classifier N(0, 0.01), zero biases, as thuml/CDAN initialises them).
    """

    def __init__(self, in_dim: int, num_classes: int = NUM_CLASSES, bottleneck_dim: int = BOTTLENECK_DIM,
                 batch_norm_relu: bool = True) -> None:
        super().__init__()
        linear, classifier = nn.Linear(in_dim, bottleneck_dim), nn.Linear(bottleneck_dim, num_classes)
        if batch_norm_relu:
            self.bottleneck = nn.Sequential(linear, nn.BatchNorm1d(bottleneck_dim), nn.ReLU())
        else:
            for layer, std in ((linear, 0.005), (classifier, 0.01)):
                nn.init.normal_(layer.weight, 0.0, std)
                nn.init.zeros_(layer.bias)
            self.bottleneck = nn.Sequential(linear)
        self.classifier = classifier
        self.feature_dim = bottleneck_dim

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) backbone features -> (B, 256) bottleneck features."""
        return self.bottleneck(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(features))


HEADS = {
    "shot": ShotHead,
    "linear": LinearHead,
    "linear_wn": partial(LinearHead, weight_normalised=True),
    "dann": partial(BottleneckHead, batch_norm_relu=True),
    "cdan": partial(BottleneckHead, batch_norm_relu=False),
}


class Classifier(nn.Module):
    """backbone + head. ``forward``: (B, 3, H, W) normalised float -> (B, C) logits."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, head.feature_dim) features before the last linear layer."""
        return self.head.embed(self.backbone(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def parts(self) -> dict[str, nn.Module]:
        """The named parts a method may train or freeze: ``backbone``, then each child of the head
        (``head.bottleneck``, ``head.classifier``)."""
        return {"backbone": self.backbone, **{f"head.{name}": part for name, part in self.head.named_children()}}


def changed_parts(before: Classifier, after: nn.Module) -> dict[str, str]:
    """Per part of ``before`` (``Classifier.parts``), what adaptation did to it in ``after``: ``trained`` (a
    parameter differs), ``frozen`` (every parameter equal) or ``replaced`` (``after`` has no such part, or one of
    other shapes: e.g. a fresh head). Compares parameters, not buffers (BatchNorm statistics move in eval passes)."""
    found = after.parts() if isinstance(after, Classifier) else {}
    changes = {}
    for name, part in before.parts().items():
        old, new = dict(part.named_parameters()), dict(found[name].named_parameters()) if name in found else {}
        if old.keys() != new.keys() or any(old[k].shape != new[k].shape for k in old):
            changes[name] = "replaced"
        else:
            changes[name] = "frozen" if all(torch.equal(old[k], new[k].to(old[k].device)) for k in old) else "trained"
    return changes


def bottleneck_width(head: str) -> int | None:
    """The bottleneck width of head ``head`` (a key of ``HEADS``), None when it has no bottleneck."""
    built = HEADS[head](8)
    return built.feature_dim if hasattr(built, "bottleneck") else None


def build_classifier(
    arch: str, stem: str, width: int, head: str, weights: str | Path | None = None
) -> Classifier:
    """A backbone (see ``build_backbone``) with a fresh ``head`` (``shot``, ``linear`` or ``linear_wn``) for the 7
    classes."""
    if head not in HEADS:
        raise UserError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
    backbone, dim = build_backbone(arch, stem, width, weights)
    return Classifier(backbone, HEADS[head](dim))


def imagenet_backbone(profile: Profile) -> tuple[nn.Module, Path]:
    """The profile's backbone started from ImageNet weights, and the weights file; a UserError saying why when the
    profile has none (random init, a reduced width, or no local weights file: nothing is downloaded)."""
    weights = imagenet_weights(profile) if profile.imagenet_init and profile.width == 64 else None
    if weights is None:
        raise UserError(f"profile {profile.name!r} has no ImageNet initialisation (width {profile.width}, random init)")
    return build_backbone(profile.arch, profile.stem, profile.width, weights)[0], weights

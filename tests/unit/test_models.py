"""Backbones (stems, widths), heads, and the classifier's shapes."""

from __future__ import annotations

import pytest
import torch

from benchmark.config.errors import UserError
from methods.core.models import LinearHead, ShotHead, build_backbone, build_classifier


@pytest.mark.parametrize(
    ("arch", "stem", "width", "size", "dim"),
    [
        ("resnet18", "imagenet", 64, 64, 512),
        ("resnet18", "small", 16, 32, 128),
        ("resnet18", "clup", 8, 48, 64),
        ("resnet50", "imagenet", 16, 64, 512),
        ("resnet10", "imagenet", 16, 64, 128),
    ],
)
def test_backbone_output_dim(arch, stem, width, size, dim):
    net, feature_dim = build_backbone(arch, stem, width)
    assert feature_dim == dim
    out = net.eval()(torch.zeros(2, 3, size, size))
    assert out.shape == (2, dim)


def test_full_width_keeps_torchvision_keys():
    net, _ = build_backbone("resnet18", "imagenet", 64)
    keys = set(net.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer4.1.bn2.weight"} <= keys
    assert not any(k.startswith("fc.") for k in keys)


def test_resnet10_is_resnet18_with_one_block_per_stage():
    net10, _ = build_backbone("resnet10", "imagenet", 16)
    net18, _ = build_backbone("resnet18", "imagenet", 16)
    keys10, keys18 = set(net10.state_dict()), set(net18.state_dict())
    assert keys10 == {k for k in keys18 if not any(k.startswith(f"layer{i}.1.") for i in range(1, 5))}
    assert all(len(getattr(net10, f"layer{i}")) == 1 for i in range(1, 5))


def test_small_stem_has_no_maxpool_and_padding_two():
    net, _ = build_backbone("resnet18", "small", 16)
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.padding == (2, 2)


def test_heads():
    model = build_classifier("resnet18", "imagenet", 16, "shot")
    assert isinstance(model.head, ShotHead)
    x = torch.zeros(4, 3, 64, 64)
    assert model.eval()(x).shape == (4, 7)
    assert model.embed(x).shape == (4, 256)
    linear = build_classifier("resnet18", "imagenet", 16, "linear")
    assert isinstance(linear.head, LinearHead) and linear.embed(x).shape == (4, 128)


def test_unknown_options_are_user_errors():
    with pytest.raises(UserError, match="unknown stem"):
        build_backbone("resnet18", "tiny", 16)
    with pytest.raises(UserError, match="unknown architecture"):
        build_backbone("vgg", "imagenet", 16)
    with pytest.raises(UserError, match="unknown head"):
        build_classifier("resnet18", "imagenet", 16, "mlp")

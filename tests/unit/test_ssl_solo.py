"""Importing a solo-learn ``.ckpt`` backbone: layouts, stem inference, strict matching, safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.config.errors import CheckpointError
from methods.core.models import build_backbone
from methods.ssl.solo import (
    backbone_state_from_solo,
    infer_arch,
    infer_stem,
    infer_width,
    load_solo_backbone,
)

WIDTH = 8
PROJ_HIDDEN, PROJ_DIM, N_PROTOTYPES = 32, 16, 10


class _LightningNamespace:
    """Stands in for the ``argparse.Namespace`` a real Lightning checkpoint pickles; unpickling it writes a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _backbone(stem: str, seed: int = 0) -> nn.Module:
    """A width-8 ResNet-18 with non-trivial BatchNorm statistics (so that a forward pass checks them too)."""
    torch.manual_seed(seed)
    net, _ = build_backbone("resnet18", stem, WIDTH)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
    return net


def _solo_payload(net: nn.Module, prefix: str = "backbone.", method: str = "swav") -> dict:
    """A checkpoint in solo-learn's layout: ``backbone.*`` + projector + prototypes, plain-typed metadata."""
    feature_dim = WIDTH * 8
    state = {f"{prefix}{k}": v.clone() for k, v in net.state_dict().items()}
    state.update({
        "projector.0.weight": torch.randn(PROJ_HIDDEN, feature_dim),
        "projector.0.bias": torch.randn(PROJ_HIDDEN),
        "projector.1.weight": torch.ones(PROJ_HIDDEN),
        "projector.1.bias": torch.zeros(PROJ_HIDDEN),
        "projector.1.running_mean": torch.zeros(PROJ_HIDDEN),
        "projector.1.running_var": torch.ones(PROJ_HIDDEN),
        "projector.1.num_batches_tracked": torch.tensor(10),
        "projector.3.weight": torch.randn(PROJ_DIM, PROJ_HIDDEN),
        "projector.3.bias": torch.randn(PROJ_DIM),
    })
    if method == "swav":
        state["prototypes.weight_g"] = torch.ones(N_PROTOTYPES, 1)
        state["prototypes.weight_v"] = torch.randn(N_PROTOTYPES, PROJ_DIM)
    else:  # DeepClusterV2: one prototype layer per clustering
        for i in range(3):
            state[f"prototypes.{i}.weight"] = torch.randn(N_PROTOTYPES, PROJ_DIM)
    return {"state_dict": state, "epoch": 3, "global_step": 10,
            "hyper_parameters": {"lr": 0.1, "name": method}}


def _write(tmp_path: Path, payload: dict, name: str = "solo.ckpt") -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


def _assert_same_network(original: nn.Module, loaded: nn.Module) -> None:
    expected, got = original.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    original.eval()
    loaded.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(original(x), loaded(x))


def test_swav_layout_loads_exactly(tmp_path):
    net = _backbone("small")
    path = _write(tmp_path, _solo_payload(net, method="swav"))
    loaded, dim, info = load_solo_backbone(path)
    assert dim == WIDTH * 8
    assert isinstance(loaded.fc, nn.Identity)
    _assert_same_network(net, loaded)
    assert info == {"arch": "resnet18", "stem": "small", "width": WIDTH, "n_tensors": len(net.state_dict()),
                    "source": str(path), "prefix": "backbone."}
    with torch.no_grad():
        assert loaded(torch.randn(2, 3, 32, 32)).shape == (2, dim)


def test_older_encoder_prefix_and_dcv2_layout_load(tmp_path):
    net = _backbone("small", seed=1)
    path = _write(tmp_path, _solo_payload(net, prefix="encoder.", method="deepclusterv2"))
    loaded, _, info = load_solo_backbone(path)
    assert info["prefix"] == "encoder."
    _assert_same_network(net, loaded)


def test_small_stem_is_inferred_from_a_3x3_conv1(tmp_path):
    net = _backbone("small")
    state = backbone_state_from_solo(_solo_payload(net))
    assert state["conv1.weight"].shape == (WIDTH, 3, 3, 3)
    assert infer_stem(state) == "small"
    assert infer_stem(state, "small") == "small"
    assert infer_width(state) == WIDTH
    assert infer_arch(state) == "resnet18"
    with pytest.raises(CheckpointError, match=r"stem 'imagenet' uses a 7x7 conv1.*3x3"):
        load_solo_backbone(_write(tmp_path, _solo_payload(net)), stem="imagenet")


def test_7x7_conv1_needs_an_explicit_stem(tmp_path):
    net = _backbone("imagenet")
    path = _write(tmp_path, _solo_payload(net))
    with pytest.raises(CheckpointError, match=r"solo\.ckpt: .*7x7.*'imagenet'.*'clup'.*pass stem explicitly"):
        load_solo_backbone(path)
    with pytest.raises(CheckpointError, match=r"stem 'small' uses a 3x3 conv1.*7x7"):
        load_solo_backbone(path, stem="small")
    loaded, _, info = load_solo_backbone(path, stem="imagenet")
    assert info["stem"] == "imagenet"
    _assert_same_network(net, loaded)
    _, _, info = load_solo_backbone(path, stem="clup")  # same weights, different stride/padding/max-pool
    assert info["stem"] == "clup"


def test_a_missing_tensor_is_named(tmp_path):
    payload = _solo_payload(_backbone("small"))
    del payload["state_dict"]["backbone.layer4.1.bn2.weight"]
    with pytest.raises(CheckpointError, match=r"1 backbone tensor\(s\) missing.*'layer4\.1\.bn2\.weight'"):
        load_solo_backbone(_write(tmp_path, payload))


def test_fc_is_optional_and_dropped_when_present(tmp_path):
    net = _backbone("small")
    payload = _solo_payload(net)  # solo-learn's own layout: no fc at all
    assert not any(k.startswith("backbone.fc.") for k in payload["state_dict"])
    load_solo_backbone(_write(tmp_path, payload, "no_fc.ckpt"))

    payload["state_dict"]["backbone.fc.weight"] = torch.randn(1000, WIDTH * 8)
    payload["state_dict"]["backbone.fc.bias"] = torch.randn(1000)
    loaded, dim, info = load_solo_backbone(_write(tmp_path, payload, "with_fc.ckpt"))
    assert isinstance(loaded.fc, nn.Identity)
    assert not any(k.startswith("fc.") for k in loaded.state_dict())
    assert info["n_tensors"] == len(net.state_dict())
    _assert_same_network(net, loaded)


def test_an_unexpected_tensor_is_an_error(tmp_path):
    payload = _solo_payload(_backbone("small"))
    payload["state_dict"]["backbone.layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected.*'layer5\.0\.conv1\.weight'"):
        load_solo_backbone(_write(tmp_path, payload))


def test_a_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    payload = _solo_payload(_backbone("small"))
    payload["state_dict"]["backbone.layer2.0.conv1.weight"] = torch.zeros(16, 4, 3, 3)
    with pytest.raises(CheckpointError,
                       match=r"shape mismatch at 'layer2\.0\.conv1\.weight': checkpoint \(16, 4, 3, 3\), "
                             r"model \(16, 8, 3, 3\)"):
        load_solo_backbone(_write(tmp_path, payload))


def test_an_arch_that_does_not_match_the_blocks_is_an_error(tmp_path):
    path = _write(tmp_path, _solo_payload(_backbone("small")))
    with pytest.raises(CheckpointError, match=r"arch 'resnet50' does not match.*basic"):
        load_solo_backbone(path, arch="resnet50")
    net50, _ = build_backbone("resnet50", "small", WIDTH)
    assert infer_arch(net50.state_dict()) == "resnet50"


def test_a_pickled_custom_object_is_refused_without_running_it(tmp_path):
    # The marker mechanism is real: plain unpickling of such an object does write the file.
    probe = tmp_path / "probe_ran"
    torch.save({"hp": _LightningNamespace(str(probe))}, tmp_path / "probe.ckpt")
    torch.load(tmp_path / "probe.ckpt", weights_only=False).get("hp").close()
    assert probe.exists()

    marker = tmp_path / "payload_ran"
    payload = _solo_payload(_backbone("small"))
    payload["hyper_parameters"] = _LightningNamespace(str(marker))
    path = _write(tmp_path, payload, "lightning.ckpt")
    with pytest.raises(CheckpointError, match=r"lightning\.ckpt: refused to load: the file needs arbitrary unpickling"):
        load_solo_backbone(path)
    assert not marker.exists(), "the pickled object's __reduce__ ran"


def test_no_backbone_keys_is_a_clear_error(tmp_path):
    payload = _solo_payload(_backbone("small"))
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("backbone.")}
    with pytest.raises(CheckpointError,
                       match=r"no backbone weights.*'backbone\.' or 'encoder\.'.*'projector', 'prototypes'"):
        load_solo_backbone(_write(tmp_path, payload))


def test_a_flat_tensor_dict_is_accepted():
    net = _backbone("small")
    flat = {f"backbone.{k}": v for k, v in net.state_dict().items()}
    state = backbone_state_from_solo(flat)
    assert state.keys() == net.state_dict().keys()
    with pytest.raises(CheckpointError, match=r"no 'state_dict' entry.*'epoch'"):
        backbone_state_from_solo({"epoch": 3, "weights": [1, 2]})

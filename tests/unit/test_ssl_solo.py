"""Importing a solo-learn ``.ckpt`` backbone: layouts, stem inference, strict matching, safe loading."""

from __future__ import annotations

import argparse
import os
import pickle
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
    """A disguised hyper-parameter object: unpickling it would open (and so create) a file."""

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
    net10, _ = build_backbone("resnet10", "small", WIDTH)
    assert infer_arch(net10.state_dict()) == "resnet10"
    with pytest.raises(CheckpointError, match=r"arch 'resnet18' does not match.*basic \(resnet10\)"):
        load_solo_backbone(_write(tmp_path, _solo_payload(net10)), arch="resnet18")


def test_a_pickled_custom_object_is_refused_without_running_it(tmp_path):
    # The marker mechanism is real: plain unpickling of such an object does write the file.
    probe = tmp_path / "probe_ran"
    pickle.loads(pickle.dumps(_LightningNamespace(str(probe)))).close()  # in memory: no checkpoint is unpickled
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


class _ShellPayload:
    """Unpickling this would run a shell command that writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _lightning_checkpoint(state_dict: dict, hyper_parameters: dict) -> dict:
    """A checkpoint as PyTorch Lightning writes it for solo-learn: weights plus Lightning's own entries."""
    return {
        "epoch": 3,
        "global_step": 10,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": state_dict,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min'}": {
            "monitor": None, "best_model_score": None, "best_model_path": "", "dirpath": "/trained_models/swav",
            "kth_value": torch.tensor(float("inf")), "last_model_path": ""}},
        "optimizer_states": [{"state": {0: {"momentum_buffer": torch.zeros(3)}},
                              "param_groups": [{"lr": 0.6, "momentum": 0.9, "weight_decay": 1e-6,
                                                "exclude_bias_n_norm": True, "params": [0]}]}],
        "lr_schedulers": [{"warmup_epochs": 10, "max_epochs": 400, "base_lrs": [0.6], "last_epoch": 3,
                           "_step_count": 4, "_last_lr": [0.24]}],
        "hparams_name": "kwargs",
        "hyper_parameters": hyper_parameters,
    }


def test_a_lightning_checkpoint_with_a_namespace_loads(tmp_path):
    net = _backbone("small")
    cfg = argparse.Namespace(
        method="swav", backbone=argparse.Namespace(name="resnet18", kwargs={}), max_epochs=400,
        optimizer=argparse.Namespace(name="lars", lr=0.6, kwargs={"eta": 0.02, "exclude_bias_n_norm": True}),
        data=argparse.Namespace(dataset="imagenet100", train_path="/data/train", num_large_crops=2),
        method_kwargs={"proj_hidden_dim": PROJ_HIDDEN, "proj_output_dim": PROJ_DIM, "num_prototypes": N_PROTOTYPES},
    )
    state = _solo_payload(net)["state_dict"]
    path = _write(tmp_path, _lightning_checkpoint(state, {"cfg": cfg}), "swav-namespace.ckpt")
    loaded, dim, info = load_solo_backbone(path)
    assert dim == WIDTH * 8
    assert info["prefix"] == "backbone." and info["stem"] == "small"
    _assert_same_network(net, loaded)


def test_a_lightning_checkpoint_with_an_omegaconf_dictconfig_loads(tmp_path, monkeypatch):
    omegaconf = pytest.importorskip("omegaconf", reason="omegaconf (in the dev extra) writes the DictConfig variant")
    net = _backbone("small", seed=2)
    cfg = omegaconf.OmegaConf.create({
        "name": "dcv2-imagenet100", "method": "deepclusterv2",
        "backbone": {"name": "resnet18", "kwargs": {}},
        "method_kwargs": {"proj_hidden_dim": PROJ_HIDDEN, "proj_output_dim": PROJ_DIM, "num_prototypes": N_PROTOTYPES,
                          "queue_size": 3840, "epoch_queue_starts": 50},
        "optimizer": {"name": "lars", "lr": 0.6, "kwargs": {"eta": 0.02, "exclude_bias_n_norm": True}},
        "data": {"dataset": "imagenet100", "train_path": "/data/train", "num_workers": 4, "fraction": -1.0},
        "augmentations": [{"rrc": {"enabled": True, "crop_min_scale": 0.14}, "num_crops": 2}],
        "scheduler": {"name": "warmup_cosine", "lr_decay_steps": None},
        "checkpoint": {"dir": "trained_models", "frequency": 1},
        "wandb": {"project": "solo-learn", "name": "${name}"},
    })
    state = _solo_payload(net, prefix="encoder.", method="deepclusterv2")["state_dict"]
    checkpoint = _lightning_checkpoint(state, {"cfg": cfg})
    checkpoint["hyper_parameters_type"] = omegaconf.DictConfig  # Lightning adds it for OmegaConf hparams
    path = _write(tmp_path, checkpoint, "dcv2-dictconfig.ckpt")

    # Loading must never construct or __setstate__ an OmegaConf object.
    def refuse(*args, **kwargs):
        raise AssertionError("an omegaconf object was built from the checkpoint")
    monkeypatch.setattr(omegaconf.DictConfig, "__setstate__", refuse)
    monkeypatch.setattr(omegaconf.ListConfig, "__setstate__", refuse)
    monkeypatch.setattr(omegaconf.DictConfig, "__init__", refuse)
    loaded, _, info = load_solo_backbone(path)
    assert info["prefix"] == "encoder."
    _assert_same_network(net, loaded)


@pytest.mark.parametrize("where", ["inside the Namespace", "next to it", "as the hyper-parameters"])
def test_a_shell_payload_in_the_hyper_parameters_never_runs(tmp_path, where):
    marker = tmp_path / "payload_ran"
    evil = _ShellPayload(str(marker))
    cfg = argparse.Namespace(method="swav", backbone=argparse.Namespace(name="resnet18"))
    if where == "inside the Namespace":
        cfg.hook = evil
        hyper_parameters = {"cfg": cfg}
    elif where == "next to it":
        hyper_parameters = {"cfg": cfg, "logger": evil}
    else:
        hyper_parameters = evil
    net = _backbone("small")
    path = _write(tmp_path, _lightning_checkpoint(_solo_payload(net)["state_dict"], hyper_parameters), "evil.ckpt")
    # Refused (os.system is named in the file and is no inert type); were it ever loaded, it could only be
    # as an inert record: either way the command must not run.
    with pytest.raises(CheckpointError, match=r"evil\.ckpt: refused to load: .*GLOBAL (posix|os)\.system"):
        load_solo_backbone(path)
    assert not marker.exists(), "the pickled object's __reduce__ ran"

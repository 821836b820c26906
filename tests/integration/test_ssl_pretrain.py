"""SSL pretraining: objectives, on-device views, collapse report, resume after a kill, CluP backbones."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES, Profile
from benchmark.orchestration.run import run_method
from benchmark.services.artifacts import artifact_dir, is_built
from benchmark.services.pretrain import CHECKPOINT, get_pretrained_backbone, lr_at, pretrain_key
from datasets import registry
from datasets.cache import read_manifest
from datasets.synth import DOMAINS
from methods.core.lars import LARS
from methods.core.models import build_backbone
from methods.ssl.objective import collapse_report
from methods.ssl.ssl_registry import get_ssl, ssl_recipe
from methods.core.colour import FastColorJitter
from methods.ssl.views import MultiCrop

ROOT = Path(__file__).resolve().parents[2]
MINI = "synth-mini"


def setup_mini() -> Profile:
    """Register a 512-image synthetic domain ``synth-mini`` and a ``tiny`` profile (width 8, 32 px, SSL
    4 epochs of 8 steps, 2 + 2 crops, 20 prototypes, checkpoint every epoch). Also used by the killed child."""
    DOMAINS[MINI] = replace(DOMAINS["synth-wild"], name=MINI, n_train=512, n_test=128, seed=7)
    quick = PROFILES["quick"]
    tiny = replace(
        quick, name="tiny", width=8, image_size=32, source=replace(quick.source, epochs=1),
        hparams={"clup": {"epochs": 1, "batch_size": 128}},
        ssl=replace(quick.ssl, epochs=4, batch_size=64, prototypes=20, projector_hidden=64, large_size=None,
                    small_crops=2, small_size=16, warmup_epochs=1.0, checkpoint_every=1),
        ssl_overrides={"swav": quick.ssl_overrides["swav"]},
    )
    PROFILES["tiny"] = tiny
    return tiny


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setitem(DOMAINS, MINI, DOMAINS["synth-wild"])  # restored (then removed) after the test
    monkeypatch.setitem(PROFILES, "tiny", PROFILES["quick"])
    return setup_mini()


@pytest.mark.parametrize("ssl", ["swav", "deepclusterv2"])
def test_objective_loss_is_finite_and_trains_the_projector(ssl: str, tiny: Profile):
    recipe = ssl_recipe(tiny, ssl)
    objective = get_ssl(ssl)(16, recipe, n_samples=40)
    torch.manual_seed(0)
    features = [torch.randn(8, 16, requires_grad=True) for _ in range(4)]
    indices = torch.arange(8)
    if objective.needs_bank():
        objective.fill_bank([objective.project(f).detach() for f in features[:2]], indices)
        objective.fill_bank([torch.nn.functional.normalize(torch.randn(40, recipe.projector_out), dim=1)] * 2,
                            torch.arange(40))
    objective.on_epoch_start(1, torch.Generator().manual_seed(0))
    objective.before_step()
    z = [objective.project(f) for f in features]
    loss = objective.loss(z[:2], z[2:], indices, epoch=1)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    objective.after_backward(epoch=1)
    assert objective.projector[0].weight.grad is not None
    assert all(torch.isfinite(f.grad).all() for f in features)


def test_swav_prototypes_unit_norm_and_frozen_early(tiny: Profile):
    swav = get_ssl("swav")(16, ssl_recipe(tiny, "swav"), n_samples=64)
    with torch.no_grad():
        swav.prototypes.weight.mul_(3.0)
    swav.before_step()
    assert torch.allclose(swav.prototypes.weight.norm(dim=1), torch.ones(tiny.ssl.prototypes), atol=1e-6)
    z = [swav.project(torch.randn(8, 16)) for _ in range(4)]
    swav.loss(z[:2], z[2:], torch.arange(8), epoch=0).backward()
    swav.after_backward(epoch=0)  # freeze_prototypes_epochs = 1
    assert swav.prototypes.weight.grad is None


def test_deepclusterv2_guards_all_ignored_targets(tiny: Profile):
    recipe = ssl_recipe(tiny, "deepclusterv2")
    dc = get_ssl("deepclusterv2")(16, recipe, n_samples=64)  # no k-means yet: every assignment is -1
    z = [dc.project(torch.randn(8, 16)) for _ in range(2)]
    loss = dc.loss(z, [], torch.arange(8), epoch=0)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    with pytest.raises(UserError, match=r"ssl.deepclusterv2.prototypes=20 for 10 target train images"):
        get_ssl("deepclusterv2")(16, recipe, n_samples=10)


def test_collapse_report():
    healthy = collapse_report(2.1, {"usage_entropy": 5.0, "usage_entropy_ratio": 0.9, "prototypes_used": 250}, 300)
    assert not healthy["collapsed"]
    stuck = collapse_report(math.log(300), {"usage_entropy": 5.0, "usage_entropy_ratio": 0.9, "prototypes_used": 250}, 300)
    assert stuck["collapsed"] and "ln P" in stuck["reasons"][0]
    one = collapse_report(1.0, {"usage_entropy": 0.0, "usage_entropy_ratio": 0.0, "prototypes_used": 1}, 300)
    assert one["collapsed"] and "usage entropy" in one["reasons"][0]


def test_views_are_batched_with_per_sample_randomness(tiny: Profile):
    crops = MultiCrop(tiny.ssl, 32)
    torch.manual_seed(0)
    batch = torch.randint(0, 256, (1, 1, 32, 32), dtype=torch.uint8).repeat(6, 1, 1, 1)  # six identical images
    large, small = crops(batch)
    assert len(large) == 2 and len(small) == 2
    assert large[0].shape == (6, 3, 32, 32) and small[0].shape == (6, 3, 16, 16)
    assert not torch.allclose(large[0][0], large[0][1])  # same image, different draws
    assert not torch.allclose(large[0], large[1])


def test_fast_colour_jitter_is_identity_at_zero_strength_and_keeps_range():
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(FastColorJitter(0, 0, 0, 0, p=1.0)(x), x, atol=1e-6)
    y = FastColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0)(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    grey = x[:, :1].expand(-1, 3, -1, -1)  # hue and saturation leave grey images grey
    out = FastColorJitter(0.0, 0.0, 0.8, 0.2, p=1.0)(grey)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_lr_schedule_warms_up_then_anneals():
    lrs = [lr_at(step, 100, 10, 0.3, 1.0) for step in range(100)]
    assert lrs[0] == pytest.approx(0.03) and lrs[9] == pytest.approx(0.3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 1e-3


_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
import torch
import benchmark.services.pretrain as pretrain
from tests.integration.test_ssl_pretrain import setup_mini
profile = setup_mini()
real_save = pretrain.save_checkpoint
def save_then_die(path, payload):
    real_save(path, payload)
    if path.name == pretrain.CHECKPOINT and payload["epoch"] == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # killed right after the checkpoint of epoch index 1
pretrain.save_checkpoint = save_then_die
pretrain.get_pretrained_backbone("{ssl}", "synth-mini", profile, 0, torch.device("cpu"))
"""


@pytest.mark.parametrize("ssl", ["swav", "deepclusterv2"])
def test_killed_pretraining_resumes_from_its_checkpoint_identically(ssl: str, tiny: Profile, tmp_path, monkeypatch):
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), ssl=ssl)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600,
    )
    assert child.returncode == -9, child.stderr  # SIGKILL
    train_sha = read_manifest(registry.ensure(MINI))["splits"]["train"]["images_sha256"]
    final = artifact_dir("ssl", pretrain_key(ssl, MINI, tiny, 0, train_sha))
    partial = final.with_name(final.name + ".partial")
    assert not is_built(final) and (partial / CHECKPOINT).is_file()

    resumed = get_pretrained_backbone(ssl, MINI, tiny, 0, torch.device("cpu"))
    assert resumed.info["built_now"] and resumed.info["resumed_from_epoch"] == 2
    assert [h["epoch"] for h in resumed.info["history"]] == [0, 1, 2, 3]
    assert is_built(resumed.path) and not partial.exists()

    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "uninterrupted"))
    straight = get_pretrained_backbone(ssl, MINI, tiny, 0, torch.device("cpu"))
    assert straight.info["resumed_from_epoch"] == 0
    assert [h["loss"] for h in straight.info["history"]] == [h["loss"] for h in resumed.info["history"]]
    for key, value in straight.backbone.state_dict().items():
        assert torch.equal(value, resumed.backbone.state_dict()[key]), key


def test_clup_with_an_ssl_backbone_and_with_a_solo_checkpoint(tiny: Profile, tmp_path, monkeypatch):
    monkeypatch.setitem(PROFILES, "tiny", replace(tiny, ssl=replace(tiny.ssl, epochs=1, batch_size=256)))
    storage = f"sqlite:///{tmp_path / 'results.db'}"
    record = run_method("clup", "synth", seed=0, profile="tiny", overrides={"backbone": "swav"}, device="cpu",
                        storage_url=storage)
    assert record["artifacts"]["backbone"] and record["hparams"]["backbone"] == "swav"
    again = run_method("clup", "synth", seed=0, profile="tiny", overrides={"backbone": "swav"}, device="cpu",
                       storage_url=storage)  # cached backbone now
    assert again["accuracy"] == record["accuracy"]
    name = record["artifacts"]["backbone"]
    assert {k: again["artifacts"][k] for k in ("source", "backbone")} == {k: record["artifacts"][k] for k in ("source", "backbone")}
    assert record["artifacts"]["built_now"][name] and not again["artifacts"]["built_now"][name]  # trained once

    backbone = build_backbone("resnet18", "imagenet", 8)[0]
    checkpoint = tmp_path / "solo.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.state_dict().items()}, "epoch": 1}, checkpoint)
    solo = run_method("clup", "synth", seed=0, profile="tiny", device="cpu", storage_url=storage,
                      overrides={"backbone": "solo", "solo_checkpoint": str(checkpoint), "solo_stem": "imagenet"})
    assert solo["artifacts"]["backbone"] == f"solo:{checkpoint}"


def test_lars_bounds_the_relative_update_of_weight_matrices():
    weight, bias = torch.nn.Parameter(torch.ones(4, 4)), torch.nn.Parameter(torch.ones(4))
    optimizer = LARS([weight, bias], lr=1.0, momentum=0.0, weight_decay=0.0, eta=0.02)
    weight.grad, bias.grad = torch.full((4, 4), 100.0), torch.full((4,), 100.0)
    optimizer.step()
    # ||w|| = 4, ||g|| = 400: the step is eta * ||w|| long; 1-d tensors (biases, norms) take plain SGD.
    assert float(torch.linalg.vector_norm(weight.detach() - 1.0)) == pytest.approx(0.02 * 4, rel=1e-4)
    assert torch.allclose(bias.detach(), torch.full((4,), -99.0))

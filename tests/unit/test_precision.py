"""Training numerics (methods/core/precision.py): bf16 autocast per profile, fp32 regions, channels-last and
torch.compile that keep state-dict keys and survive deep copies. CPU only."""

from __future__ import annotations

import contextlib
import copy
import functools
import shutil
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES, Profile
from benchmark.services.pretrain import _fill_bank, _start
from methods.core.data import normalise, strong_augmentation, supervised_augmentation, to_unit
from methods.core.models import build_backbone
from methods.core.neighbours import nearest_neighbours
from methods.core.precision import autocast_dtype, full_precision, prepare_for_training, training_numerics
from methods.ssl.sinkhorn import sinkhorn_knopp
from methods.ssl.spherical_kmeans import spherical_kmeans
from methods.ssl.ssl_registry import get_ssl, ssl_recipe

CPU = torch.device("cpu")


def _profile(**numerics: object) -> Profile:
    """``tiny`` with fp32, NCHW and no compilation unless ``numerics`` says otherwise."""
    return replace(PROFILES["tiny"], **{"precision": "fp32", "channels_last": False, "compile": False, **numerics})


def _backbone() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("resnet18", "imagenet", 8)[0]


def _images(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def _layer1_dtype(model: nn.Module, profile: Profile) -> torch.dtype:
    """The dtype of ``model.layer1``'s output in one forward under ``training_numerics(profile, CPU)``."""
    seen: list[torch.dtype] = []
    handle = model.layer1.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with training_numerics(profile, CPU):
        model(_images())
    handle.remove()
    return seen[0]


def test_autocast_dtype_per_precision_and_device(monkeypatch):
    cuda = torch.device("cuda")
    assert autocast_dtype(_profile(precision="fp32"), CPU) is None
    assert autocast_dtype(_profile(precision="fp32"), cuda) is None
    assert autocast_dtype(_profile(precision="bf16"), CPU) is torch.bfloat16
    assert autocast_dtype(_profile(precision="auto"), CPU) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert autocast_dtype(_profile(precision="auto"), cuda) is None  # only emulated bf16: stay fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert autocast_dtype(PROFILES["paper"], cuda) is torch.bfloat16
    with pytest.raises(UserError, match="unknown precision 'fp16'; known: fp32, bf16, auto"):
        autocast_dtype(_profile(precision="fp16"), CPU)


def test_bf16_profile_runs_the_forward_in_bf16_on_cpu_and_the_others_do_not():
    model = _backbone().train()
    assert _layer1_dtype(model, _profile(precision="bf16")) == torch.bfloat16
    assert _layer1_dtype(model, _profile(precision="fp32")) == torch.float32
    assert _layer1_dtype(model, _profile(precision="auto")) == torch.float32  # auto: fp32 off CUDA


def test_full_precision_gives_float32_inside_autocast():
    x, w = torch.randn(8, 16), torch.randn(4, 16)
    with training_numerics(_profile(precision="bf16"), CPU):
        assert (x @ w.T).dtype == torch.bfloat16
        for where in (x, CPU, "cpu"):
            with full_precision(where):
                assert (x @ w.T).dtype == torch.float32
        assert (x @ w.T).dtype == torch.bfloat16  # autocast again after the region
    with full_precision(x):  # a no-op outside autocast
        assert torch.equal(x @ w.T, x @ w.T)


def test_sinkhorn_kmeans_and_neighbours_under_autocast_match_fp32():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(64, 32, generator=g), dim=1)
    scores = z @ F.normalize(torch.randn(20, 32, generator=g), dim=1).T
    codes = sinkhorn_knopp(scores, 0.05, 3)
    centroids, labels = spherical_kmeans(z, 5, 4, torch.Generator().manual_seed(0))
    neighbours = nearest_neighbours(z[:8], z, 3, torch.arange(8))
    with training_numerics(_profile(precision="bf16"), CPU):
        assert torch.allclose(sinkhorn_knopp(scores, 0.05, 3), codes, atol=1e-6)
        bf16_codes = sinkhorn_knopp(scores.bfloat16(), 0.05, 3)  # bf16 scores: fp32 codes, near the fp32 ones
        assert bf16_codes.dtype == torch.float32 and torch.allclose(bf16_codes.sum(1), torch.ones(64), atol=1e-5)
        assert (bf16_codes - codes).abs().max() < 0.1
        c, a = spherical_kmeans(z, 5, 4, torch.Generator().manual_seed(0))
        assert c.dtype == torch.float32 and torch.equal(a, labels) and torch.allclose(c, centroids, atol=1e-6)
        assert torch.equal(nearest_neighbours(z[:8], z, 3, torch.arange(8)), neighbours)


def test_training_augmentations_run_in_fp32_under_autocast():
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for augment, prepare in ((supervised_augmentation(), normalise), (strong_augmentation(), to_unit)):
        torch.manual_seed(0)
        expected = augment(prepare(images))
        torch.manual_seed(0)
        with training_numerics(_profile(precision="bf16"), CPU):  # bf16 affine grids would move pixels
            assert torch.equal(augment(prepare(images)), expected)


@pytest.mark.parametrize("ssl", ["swav", "deepclusterv2"])
def test_a_bf16_pretraining_step_runs_in_bf16_with_a_finite_loss(ssl, tmp_path):
    profile = _profile(precision="bf16", ssl=replace(PROFILES["tiny"].ssl, batch_size=32))
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    run = _start(ssl, profile, images=images, seed=0, checkpoint_dir=tmp_path)
    seen: list[torch.dtype] = []
    run.backbone.layer1.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    run.backbone.train()
    run.objective.train()
    if run.objective.needs_bank():
        _fill_bank(run)
        assert run.objective.bank.dtype == torch.float32 and run.objective.bank.abs().sum() > 0
    run.objective.on_epoch_start(0, run.generator)
    losses = [run.step(torch.arange(start, start + 32), step, 2) for step, start in enumerate((0, 32))]
    assert seen and set(seen) == {torch.bfloat16}
    assert all(loss.dtype == torch.float32 and torch.isfinite(loss) for loss in losses)
    assert all(torch.isfinite(p).all() for p in run.backbone.parameters())


def test_swav_loss_is_fp32_under_autocast():
    recipe = ssl_recipe(PROFILES["tiny"], "swav")
    swav = get_ssl("swav")(16, recipe, n_samples=64)
    z = [F.normalize(torch.randn(8, recipe.projector_out, generator=torch.Generator().manual_seed(i)), dim=1)
         for i in range(4)]
    reference = swav.loss(z[:2], z[2:], torch.arange(8), epoch=1)
    with training_numerics(_profile(precision="bf16"), CPU):
        under_autocast = swav.loss(z[:2], z[2:], torch.arange(8), epoch=1)
    assert under_autocast.dtype == torch.float32 and torch.allclose(under_autocast, reference, atol=1e-6)


def test_fp32_nchw_profiles_leave_the_model_untouched():
    model = _backbone()
    weight = model.conv1.weight
    assert prepare_for_training(model, _profile()) is model
    assert model.conv1.weight is weight and weight.is_contiguous() and "forward" not in model.__dict__
    for name in ("quick", "tiny"):  # fp32, channels-last (docs/PERFORMANCE.md, "The quick profile's speed")
        assert isinstance(training_numerics(PROFILES[name], CPU), contextlib.nullcontext)
        assert PROFILES[name].channels_last and not PROFILES[name].compile


def test_channels_last_keeps_keys_and_outputs_and_survives_deepcopy():
    reference = _backbone().eval()
    model = prepare_for_training(copy.deepcopy(reference), _profile(channels_last=True))
    assert list(model.state_dict()) == list(reference.state_dict())
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = _images()
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(model(x), expected, atol=1e-5)
        twin = copy.deepcopy(model)
        assert twin.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(twin(x), expected, atol=1e-5)


class _Net(nn.Module):
    """A classifier-shaped model (``backbone`` + ``head``), small enough to compile in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's default backend (inductor) needs a C compiler (cc or gcc) on PATH")
def test_compile_keeps_keys_and_a_deep_copy_stays_compiled_on_its_own_weights():
    torch.manual_seed(0)
    reference = _Net().eval()
    model = prepare_for_training(copy.deepcopy(reference), _profile(compile=True))
    assert list(model.state_dict()) == list(reference.state_dict())
    assert isinstance(model.backbone.__dict__["forward"], functools.partial)  # the backbone, so embed paths too
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():  # one mode only: a single compilation (about 15 s on 2 cores)
        assert torch.allclose(model(x), reference(x), atol=1e-5)
        twin = copy.deepcopy(model)
        assert twin.backbone.forward.args[0] is twin.backbone  # compiled, bound to the copy's own weights
        for p in twin.parameters():
            p.zero_()
        assert torch.equal(twin(x), torch.zeros(2, 2)) and not torch.equal(model(x), torch.zeros(2, 2))
    model.load_state_dict(reference.state_dict())  # state dicts load by the same keys

"""Source training: same seed twice on CPU gives the identical model and accuracy; the artifact is reused; the
recipe's ``grey_probability`` and ``ema_decay`` (off by default: training bit-identical to before they existed)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F

from benchmark.config.profiles import PROFILES, SourceRecipe
from benchmark.services.source import get_source_model
from methods.core import training as T
from methods.core.data import IMAGENET_MEAN, IMAGENET_STD, normalise, supervised_augmentation
from methods.core.models import build_classifier
from tests.conftest import tiny_variant

CPU = torch.device("cpu")


@pytest.fixture
def tiny_profile(monkeypatch):
    """``tests.conftest.tiny_variant()`` registered as ``tiny`` for this test."""
    tiny = tiny_variant()
    monkeypatch.setitem(PROFILES, "tiny", tiny)
    return tiny


def test_same_seed_same_source_model(tiny_profile):
    first = get_source_model("synth-lab", tiny_profile, seed=3, device=CPU)
    cached = get_source_model("synth-lab", tiny_profile, seed=3, device=CPU)
    assert cached.path == first.path and not cached.info["built_now"]
    shutil.rmtree(first.path)  # force a second training from scratch with the same seed
    second = get_source_model("synth-lab", tiny_profile, seed=3, device=CPU)
    assert second.info["built_now"]
    assert second.info["source_test"]["accuracy"] == first.info["source_test"]["accuracy"]
    assert second.info["source_test"]["confusion"] == first.info["source_test"]["confusion"]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key


def test_other_seed_other_artifact(tiny_profile):
    a = get_source_model("synth-lab", tiny_profile, seed=0, device=CPU)
    b = get_source_model("synth-lab", tiny_profile, seed=1, device=CPU)
    assert a.path != b.path
    assert a.info["train_seed"] != b.info["train_seed"]


# --- SourceRecipe.grey_probability and SourceRecipe.ema_decay (docs/LAB_NOTES.md, "Source-model stability") ---

def _data(n: int = 48, size: int = 32):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 7, (n,), generator=g)
    return images, labels


def _model():
    tiny = PROFILES["tiny"]
    torch.manual_seed(0)
    return build_classifier(tiny.arch, tiny.stem, tiny.width, "shot", None)


def _recipe(**fields) -> SourceRecipe:
    return SourceRecipe(epochs=2, batch_size=16, lr=5e-2, backbone_lr_mult=1.0, weight_decay=5e-4, **fields)


def _unit(views: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return views * std + mean


def test_grey_probability_one_makes_every_view_grey():
    images, _ = _data()
    torch.manual_seed(1)
    views = _unit(T.supervised_views("mild", grey_probability=1.0)(images))
    centre = views[:, :, 8:24, 8:24]  # the small affine never pads the central half with the (coloured) fill
    assert torch.allclose(centre[:, 0], centre[:, 1], atol=1e-4) and torch.allclose(centre[:, 1], centre[:, 2], atol=1e-4)
    torch.manual_seed(1)
    coloured = _unit(T.supervised_views("mild")(images))[:, :, 8:24, 8:24]
    assert not torch.allclose(coloured[:, 0], coloured[:, 1], atol=1e-2)


def test_grey_probability_default_views_unchanged():
    """At 0 no RNG draw is made: the views are bit-identical to the mild augmentation of the normalised batch."""
    images, _ = _data()
    torch.manual_seed(2)
    new = T.supervised_views("mild", grey_probability=0.0)(images)
    torch.manual_seed(2)
    old = supervised_augmentation()(normalise(images))
    assert torch.equal(new, old)


def _train_before_fields(model, images, labels, recipe, generator):
    """``train_supervised`` as it was before ``grey_probability`` and ``ema_decay`` existed."""
    views = lambda batch, mild=supervised_augmentation(): mild(normalise(batch))  # noqa: E731
    optimizer = T.shot_optimizer(model.backbone.parameters(), model.head.parameters(), recipe.lr,
                                 recipe.backbone_lr_mult, recipe.momentum, recipe.weight_decay, recipe.nesterov)
    model.train()

    def step(indices, index, total):
        T.shot_lr_step(optimizer, index, total, recipe.schedule_gamma, recipe.schedule_power)
        loss = F.cross_entropy(model(views(images[indices])), labels[indices], label_smoothing=recipe.label_smoothing)
        T.optimise(optimizer, loss)
        return loss

    return T.run_epochs(len(images), recipe.batch_size, recipe.epochs, generator, step, "old")


def test_default_fields_train_bit_identically_to_before():
    images, labels = _data()
    recipe = _recipe()
    assert recipe.grey_probability == 0.0 and recipe.ema_decay == 0.0
    old, new = _model(), _model()
    torch.manual_seed(3)
    _train_before_fields(old, images, labels, recipe, torch.Generator().manual_seed(4))
    torch.manual_seed(3)
    T.train_supervised(new, images, labels, recipe, torch.Generator().manual_seed(4))
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key


def test_ema_decay_gives_the_ema_of_the_trained_weights(monkeypatch):
    images, labels = _data()
    decay = 0.6
    states = []
    optimise = T.optimise

    def recording(optimizer, loss):
        optimise(optimizer, loss)
        states.append({k: v.detach().clone() for k, v in plain.state_dict().items()})

    plain, averaged = _model(), _model()
    monkeypatch.setattr(T, "optimise", recording)
    torch.manual_seed(5)
    T.train_supervised(plain, images, labels, _recipe(), torch.Generator().manual_seed(6))
    monkeypatch.setattr(T, "optimise", optimise)
    torch.manual_seed(5)
    T.train_supervised(averaged, images, labels, _recipe(ema_decay=decay), torch.Generator().manual_seed(6))
    assert len(states) == 6  # 2 epochs x 3 steps
    expected = {k: v.clone() for k, v in states[0].items()}
    for state in states[1:]:
        for k, v in state.items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
    result = averaged.state_dict()
    for k, v in expected.items():
        if v.is_floating_point():
            assert torch.allclose(result[k], v, atol=1e-5, rtol=1e-4), k
    last = states[-1]
    assert any(not torch.allclose(result[k], last[k]) for k in last if last[k].is_floating_point())


def test_new_fields_are_in_the_source_key_and_default_off():
    fields = {f.name: f.default for f in dataclasses.fields(SourceRecipe)}
    assert fields["grey_probability"] == 0.0 and fields["ema_decay"] == 0.0
    assert list(fields)[-2:] == ["grey_probability", "ema_decay"]

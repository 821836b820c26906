"""Each method's source network: the releases' heads, the per-method source recipe of the ``paper`` profile, what
adaptation changed in each part of the source model (measured by the harness), and ExpW's shorter-side resize."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.config.profiles import PROFILES, SOURCE_RECIPES
from benchmark.orchestration.profile_resolution import method_source, resolve_profile
from datasets.images import load_image
from methods.core.models import BottleneckHead, build_classifier, changed_parts


@pytest.mark.parametrize(("head", "layers", "bottleneck"), [
    ("shot", ["Linear", "BatchNorm1d"], 256), ("dann", ["Linear", "BatchNorm1d", "ReLU"], 256),
    ("cdan", ["Linear"], 256), ("linear", None, None), ("linear_wn", None, None),
])
def test_each_head_is_its_releases_network(head: str, layers: list[str] | None, bottleneck: int | None):
    model = build_classifier("resnet18", "imagenet", 8, head).eval()
    found = getattr(model.head, "bottleneck", None)
    assert (None if found is None else [type(m).__name__ for m in found]) == layers
    assert model.head.feature_dim == (bottleneck or 64) and model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_cdans_head_is_initialised_as_thuml_cdan_does():
    torch.manual_seed(0)
    head = BottleneckHead(2048, batch_norm_relu=False)
    assert head.bottleneck[0].weight.std().item() == pytest.approx(0.005, rel=0.02)
    assert head.classifier.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert not head.bottleneck[0].bias.any() and not head.classifier.bias.any()


def test_the_paper_profile_gives_each_method_its_releases_source_recipe_and_quick_one_shared_model():
    paper, quick = PROFILES["paper"], PROFILES["quick"]
    for method, recipe in (("shot", "shot"), ("shot_im", "shot"), ("nrc", "shot"), ("aad", "shot"),
                           ("adacontrast", "shot"), ("dann", "dann"), ("cdan", "cdan"), ("clup", "authors"),
                           ("source_only", "authors"), ("oracle", "authors")):
        assert method_source(paper, method).source == SOURCE_RECIPES[recipe], method
        assert method_source(quick, method) is quick  # one source model for every method: an identical start
    assert method_source(paper, None) is paper  # a probe, or a source model alone: the profile's recipe
    assert SOURCE_RECIPES["shot"].head == "shot" and SOURCE_RECIPES["shot"].label_smoothing == 0.1
    # The user's overrides apply after the method's recipe, and the flag is recorded only where it is set.
    assert resolve_profile("paper", {"source.epochs": 1}, "shot").source == replace(SOURCE_RECIPES["shot"], epochs=1)
    assert paper.as_record()["source_per_method"] is True and "source_per_method" not in quick.as_record()


def test_changed_parts_tells_trained_frozen_and_replaced_parts():
    before = build_classifier("resnet18", "imagenet", 8, "shot")
    after = build_classifier("resnet18", "imagenet", 8, "shot")
    after.load_state_dict(before.state_dict())
    with torch.no_grad():
        after.head.bottleneck[0].weight.add_(1.0)
    assert changed_parts(before, after) == {"backbone": "frozen", "head.bottleneck": "trained",
                                            "head.classifier": "frozen"}
    fresh = build_classifier("resnet18", "imagenet", 8, "linear")  # a fresh linear head on a copied backbone
    fresh.backbone.load_state_dict(before.backbone.state_dict())
    assert changed_parts(before, fresh) == {"backbone": "frozen", "head.bottleneck": "replaced",
                                            "head.classifier": "replaced"}


def _photo(tmp_path: Path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_shorter_side_resize_keeps_the_aspect_ratio_and_takes_the_centre(tmp_path: Path):
    path = _photo(tmp_path)
    box = (10, 5, 90, 45)  # 80 x 40: resized to 64 x 32 (shorter side 32), then the centre 32 x 32
    ours = load_image(path, size=32, channels=3, annotation=path, line=1, box=box, shorter_side=True)
    resized = Image.open(path).crop(box).resize((64, 32), Image.Resampling.BILINEAR)
    assert np.array_equal(ours, np.asarray(resized)[:, 16:48])
    squashed = load_image(path, size=32, channels=3, annotation=path, line=1, box=box)
    assert not np.array_equal(ours, squashed)
    square = (10, 5, 50, 45)  # a square box: the same as the plain resize
    assert np.array_equal(load_image(path, size=32, channels=3, annotation=path, line=1, box=square, shorter_side=True),
                          load_image(path, size=32, channels=3, annotation=path, line=1, box=square))

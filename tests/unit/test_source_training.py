"""Source training: same seed twice on CPU gives the identical model and accuracy; the artifact is reused."""

from __future__ import annotations

import shutil

import pytest
import torch

from benchmark.config.profiles import PROFILES
from benchmark.services.source import get_source_model
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

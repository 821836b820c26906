"""Unsupervised validators: label-free, higher is better, chunking does not change SND."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from methods.core.inference import Outputs
from methods.core.validators import VALIDATORS, compute_validators, snd_score


def _outputs(logits: torch.Tensor) -> Outputs:
    n = len(logits)
    return Outputs(features=torch.zeros(n, 4), embeddings=torch.zeros(n, 4), logits=logits)


def test_confident_diverse_beats_uniform():
    confident = _outputs(torch.eye(7).repeat(5, 1) * 20)
    uniform = _outputs(torch.zeros(35, 7))
    good, bad = compute_validators(confident), compute_validators(uniform)
    assert good["entropy"] > bad["entropy"] and good["im"] > bad["im"]
    assert math.isclose(bad["im"], 0.0, abs_tol=1e-4)
    assert math.isclose(good["im"], math.log(7), rel_tol=1e-3)


def test_snd_chunking_invariant():
    torch.manual_seed(0)
    outputs = _outputs(torch.randn(50, 7) * 3)
    assert snd_score(outputs, chunk=7) == pytest.approx(snd_score(outputs, chunk=4096), rel=1e-6)
    assert math.isfinite(snd_score(outputs))


def test_validators_take_no_labels():
    for name, fn in VALIDATORS.items():
        params = inspect.signature(fn).parameters
        assert not any("label" in p or "truth" in p for p in params), name

"""Method registry: built-ins, hyperparameter resolution order and validation."""

from __future__ import annotations

import pytest

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES
from benchmark.config.setups import SETUPS
from methods.api import Setting
from methods.registry import available, get, resolve_hparams


def test_builtins_and_settings():
    methods = available()
    assert {"source_only", "oracle", "shot", "shot_im", "clup"} <= set(methods)
    assert methods["source_only"].setting is Setting.SOURCE
    assert methods["oracle"].setting is Setting.ORACLE
    assert {methods[m].setting for m in ("shot", "shot_im", "clup")} == {Setting.SFDA}


def test_resolution_order_defaults_profile_setup_user():
    clup = get("clup")
    paper = resolve_hparams(clup, SETUPS["raf_fer2013"].hparams, {}, PROFILES["paper"])
    assert (paper["clusters"], paper["q"], paper["epochs"], paper["batch_size"]) == (1000, 0.8, 50, 32)
    assert resolve_hparams(clup, SETUPS["raf_expw"].hparams, {}, PROFILES["paper"])["q"] == 0.7
    quick = resolve_hparams(clup, SETUPS["synth"].hparams, {"q": "0.6", "score": "confidence"}, PROFILES["quick"])
    assert quick["epochs"] == PROFILES["quick"].hparams["clup"]["epochs"]
    assert (quick["q"], quick["score"]) == (0.6, "confidence")


def test_invalid_user_values():
    clup = get("clup")
    with pytest.raises(UserError, match="unknown hyperparameter.*valid: backbone, batch_size"):
        resolve_hparams(clup, {}, {"kk": "3"})
    with pytest.raises(UserError, match="expected a float"):
        resolve_hparams(clup, {}, {"q": "high"})
    with pytest.raises(UserError, match="is not one of purity, confidence"):
        resolve_hparams(clup, {}, {"score": "entropy"})
    with pytest.raises(UserError, match="has no hyperparameters"):
        resolve_hparams(get("source_only"), {}, {"lr": "1"})


def test_shot_im_is_shot_without_pseudo_labels():
    assert resolve_hparams(get("shot_im"), {}, {})["cls_par"] == 0.0
    assert resolve_hparams(get("shot"), {}, {})["cls_par"] == 0.3

"""Hyperparameters declare their valid range (``methods.api.Range``); ``resolve_hparams`` rejects a value out of it,
and any non-finite float, as a one-line UserError while the run is planned: before any data is loaded and before
any trial exists in the storage."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES
from benchmark.config.setups import SETUPS
from benchmark.orchestration import run
from benchmark.orchestration.run import run_method
from benchmark.store.storage import open_storage
from methods import registry
from methods.api import Range, SearchFloat, SearchInt

ROOT = Path(__file__).resolve().parents[2]
ALL_METHODS = tuple(sorted(registry.available()))


def _trials(storage: str) -> list[Any]:
    store = open_storage(storage)
    names = optuna.get_all_study_names(storage=store)
    return [trial for name in names for trial in optuna.load_study(study_name=name, storage=store).get_trials()]


# (method, --set values, seed, the parameter the error must name)
REVIEWER_CASES = [
    ("clup", {"clusters": "0"}, 0, "clusters"),
    ("clup", {"clusters": "-3"}, 0, "clusters"),
    ("clup", {"q": "1.5"}, 0, "q"),
    ("clup", {"q": "-1"}, 0, "q"),
    ("clup", {"q": "nan"}, 0, "q"),
    ("shot", {"batch_size": "0"}, 0, "batch_size"),
    ("clup", {"batch_size": "0"}, 0, "batch_size"),
    ("nrc", {"epochs": "0"}, 0, "epochs"),
    ("shot", {"lr": "inf"}, 0, "lr"),
    ("dann", {"lr": "nan"}, 0, "lr"),
    ("source_only", {}, -1, "seed"),
]


@pytest.mark.parametrize(("method", "sets", "seed", "name"), REVIEWER_CASES,
                         ids=[f"{m}-{'-'.join(f'{k}={v}' for k, v in s.items()) or f'seed={seed}'}"
                              for m, s, seed, _ in REVIEWER_CASES])
def test_out_of_range_values_fail_before_any_data_or_trial(method, sets, seed, name, tiny, storage, monkeypatch):
    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was loaded before the hyperparameters were checked")

    monkeypatch.setattr(run, "split_tensors", no_data)
    monkeypatch.setattr(run, "get_source_model", no_data)
    with pytest.raises(UserError) as raised:
        run_method(method, "synth", seed=seed, profile=tiny, overrides=sets, device="cpu", storage_url=storage)
    message = str(raised.value)
    assert name in message and "\n" not in message
    if sets:
        assert f"method {method!r}" in message and "valid: " in message
    assert _trials(storage) == []


@pytest.mark.parametrize(
    ("method", "sets", "message"),
    [
        ("clup", {"q": "1"}, "clup': hyperparameter q=1.0 is out of range; valid: 0 <= q < 1"),
        ("clup", {"clusters": "1"}, "clusters=1 is out of range; valid: clusters >= 2"),
        ("clup", {"lr": "-inf"}, "lr=-inf is not a finite number; valid: lr > 0"),
        ("shot", {"lr": "0"}, "lr=0.0 is out of range; valid: lr > 0"),
        ("shot", {"backbone_lr_mult": "0"}, "backbone_lr_mult=0.0 is out of range; valid: backbone_lr_mult > 0"),
        ("shot", {"cls_par": "-0.1"}, "cls_par=-0.1 is out of range; valid: cls_par >= 0"),
        ("shot_im", {"cls_par": "0.3"}, "cls_par=0.3 is out of range; valid: cls_par = 0"),
        ("aad", {"beta": "-1"}, "beta=-1.0 is out of range; valid: beta >= 0"),
        ("nrc", {"kk": "0"}, "kk=0 is out of range; valid: kk >= 1"),
        ("cdan", {"trade_off": "-1"}, "trade_off=-1.0 is out of range; valid: trade_off >= 0"),
    ],
)
def test_messages_name_method_parameter_value_and_range(method, sets, message):
    with pytest.raises(UserError) as raised:
        registry.resolve_hparams(registry.get(method), {}, sets)
    assert message in str(raised.value)


def test_profile_and_setup_values_are_checked_too():
    shot = registry.get("shot")
    with pytest.raises(UserError, match=r"epochs=0 \(the setup value\) is out of range; valid: epochs >= 1"):
        registry.resolve_hparams(shot, {"shot": {"epochs": 0}}, {})
    with pytest.raises(UserError, match=r"ent_par=nan \(the setup value\) is not a finite number"):
        registry.resolve_hparams(shot, {"*": {"ent_par": math.nan}}, {})


def test_boundaries_inside_the_range_are_accepted():
    clup = registry.get("clup")
    values = registry.resolve_hparams(clup, {}, {"q": "0", "clusters": "2", "mixup_alpha": "0", "epochs": "1"})
    assert (values["q"], values["clusters"], values["mixup_alpha"], values["epochs"]) == (0.0, 2, 0.0, 1)


def test_range_membership_and_description():
    assert 0.5 in Range(0, 1, high_inclusive=False) and 1 not in Range(0, 1, high_inclusive=False)
    assert 0 not in Range.above(0) and 1e-12 in Range.above(0) and math.inf in Range.above(0)
    assert not any(value in Range() for value in (math.nan, "3", True))  # not numbers, or not comparable
    assert Range(0, 1, high_inclusive=False).describe("q") == "0 <= q < 1"
    assert Range.at_least(2).describe("k") == "k >= 2" and Range.above(0).describe("lr") == "lr > 0"


@pytest.mark.parametrize("method", ALL_METHODS)
def test_defaults_and_search_ranges_lie_within_the_declared_ranges(method):
    for name, hp in registry.get(method).hparams_spec.items():
        if isinstance(hp.default, float):
            assert math.isfinite(hp.default), (method, name)
        if isinstance(hp.default, (int, float)) and not isinstance(hp.default, bool):
            assert hp.valid is not None, f"{method}.{name} is a number without a declared range"
            assert hp.default in hp.valid, (method, name, hp.default)
        if isinstance(hp.distribution, (SearchFloat, SearchInt)):  # a search can draw no invalid value
            assert hp.valid is not None and hp.distribution.low in hp.valid and hp.distribution.high in hp.valid, (
                method, name)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_profile_and_setup_resolves_within_range(method):
    cls = registry.get(method)
    for profile in PROFILES.values():
        for setup in SETUPS.values():
            registry.resolve_hparams(cls, setup.hparams, {}, profile)  # no UserError


def test_cli_rejects_nan_in_one_line_and_leaves_no_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--method", "clup", "--setup", "synth", "--set", "q=nan",
         "--storage", storage],
        check=False, capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "q=nan" in lines[0] and "clup" in lines[0], result.stderr
    assert [t for t in _trials(storage) if t.state.name == "RUNNING"] == []

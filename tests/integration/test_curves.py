"""Training curves (docs/PROTOCOL.md, "Training curves"): every training method reports its loss and a label-free
validator once per epoch through ``RunContext``; reporting changes no result and draws no random number; the
harness puts the loss into the trial's intermediate values and every series into its ``curves`` attribute and
the record; ``write_figures`` draws them, skipping runs stored without curves."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState

from benchmark.config.profiles import PROFILES
from benchmark.orchestration.experiments import EXPERIMENTS, Job
from benchmark.orchestration.run import EpochCurves, run_method
from benchmark.reporting.figures import CURVES_NAME, write_figures
from benchmark.store.storage import open_storage
from benchmark.store.trial_runs import TrialRequest, trial_for_run
from datasets.labels import CLASS_NAMES
from methods import registry
from methods.api import RunContext, Setting
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages
from methods.core.models import build_classifier
from methods.core.seeding import seed_everything
from methods.core.validators import fixed_subset

#: Built-in methods with a training loop (``source_only`` has none and reports nothing).
TRAINING = tuple(sorted(name for name, cls in registry.available().items()
                        if cls.__module__.startswith("methods.") and cls.setting is not Setting.SOURCE))
#: Small enough for a few steps on 32 images.
SMALL = {"epochs": 2, "batch_size": 8, "clusters": 4, "q": 0.5}


def _profile() -> Any:
    """``tiny`` with a source recipe (the oracle's) of 2 epochs of 8 images."""
    tiny = PROFILES["tiny"]
    return dataclasses.replace(tiny, source=dataclasses.replace(tiny.source, epochs=2, batch_size=8))


def _data(setting: Setting) -> Any:
    generator = torch.Generator().manual_seed(123)
    target = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 7, (32,), generator=generator)
    if setting is Setting.ORACLE:
        return OracleData(target=LabelledImages(target, labels))
    if setting is Setting.UDA:
        source = LabelledImages(torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=generator), labels[:24])
        return UdaData(source=source, target=UnlabelledImages(target))
    return SourceFreeData(target=UnlabelledImages(target))


def _adapt(name: str, report: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Adapt a fresh width-8 model with ``name`` at small settings; its weights and the global and data-order
    random states afterwards."""
    cls = registry.get(name)
    hparams = {key: SMALL.get(key, spec.default) for key, spec in cls.hparams_spec.items()}
    torch.manual_seed(0)
    source = build_classifier("resnet18", "imagenet", 8, "shot")
    ctx = RunContext(torch.device("cpu"), _profile(), 0, seed_everything(0), report=report)
    model = cls(hparams).adapt(source, _data(cls.setting), ctx)
    return model.state_dict(), torch.get_rng_state(), ctx.generator.get_state()


@pytest.fixture
def one_thread():
    """One torch thread: these small models run faster so on a shared machine (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", TRAINING)
def test_every_training_method_reports_each_epoch_and_reporting_changes_nothing(name: str, one_thread: None):
    reported: list[tuple[int, dict[str, float]]] = []
    weights, rng, order = _adapt(name, lambda epoch, values: reported.append((epoch, dict(values))))
    assert [epoch for epoch, _ in reported] == [0, 1]
    for _, values in reported:
        assert set(values) == {"loss", "im"} and all(math.isfinite(v) for v in values.values())
    silent_weights, silent_rng, silent_order = _adapt(name, None)  # outside the harness: nothing reported
    assert weights.keys() == silent_weights.keys()
    assert all(torch.equal(weights[key], silent_weights[key]) for key in weights)  # same numerics
    assert torch.equal(rng, silent_rng) and torch.equal(order, silent_order)  # no random number drawn


def test_a_context_without_a_sink_reports_nothing():
    ctx = RunContext(torch.device("cpu"), PROFILES["tiny"], 0, seed_everything(0))
    ctx.report_epoch(0, {"loss": 1.0})  # a no-op
    assert ctx.epoch_reporter(torch.nn.Linear(1, 1), torch.zeros(4, 3, 8, 8, dtype=torch.uint8)) is None


def test_the_validator_subset_is_fixed_and_spread_over_the_split():
    assert fixed_subset(5, 512).tolist() == [0, 1, 2, 3, 4]
    subset = fixed_subset(8000, 512)
    assert len(subset) == 512 == len(set(subset.tolist())) and subset[0] == 0 and subset[-1] >= 8000 - 16
    assert torch.equal(subset, fixed_subset(8000, 512))


def test_epoch_curves_align_series_by_epoch_and_ignore_a_repeated_epoch(monkeypatch):
    monkeypatch.setattr("benchmark.orchestration.run.log", lambda message: None)
    curves = EpochCurves()
    curves(0, {"loss": 2.0})
    curves(1, {"loss": 1.5, "im": 0.5})
    curves(1, {"loss": 9.0})  # ignored
    curves(3, {"loss": 1.0, "im": 0.75})
    assert curves.series == {"loss": [2.0, 1.5, None, 1.0], "im": [None, 0.5, None, 0.75]}


def test_a_run_stores_its_curve_as_intermediate_values_and_in_the_record(tiny: str, storage: str):
    record = run_method("shot", "synth", seed=0, profile=tiny, overrides={"epochs": 2}, device="cpu",
                        storage_url=storage)
    curves = record["curves"]
    assert set(curves) == {"loss", "im"} and all(len(values) == 2 for values in curves.values())
    assert all(math.isfinite(v) for values in curves.values() for v in values)
    # The last epoch's im on a fixed subset of the target train split is close to the record's im on all of it.
    assert abs(curves["im"][-1] - record["validators"]["im"]) < 0.2
    study = optuna.load_study(study_name="run/shot/synth/tiny", storage=open_storage(storage))
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert trial.intermediate_values == dict(enumerate(curves["loss"]))
    assert trial.user_attrs["curves"] == curves == trial.user_attrs["record"]["curves"]


def _record(job: Job, curves: Mapping[str, list[float]] | None) -> dict[str, Any]:
    """A run record with the fields Table 1's figures read."""
    record = {"method": job.method, "setting": "sfda", "setup": job.setup, "profile": job.profile, "seed": job.seed,
              "hparams": job.hparams(), "accuracy": 50.0, "class_accuracy": dict.fromkeys(CLASS_NAMES, 50.0),
              "confusion": [[10 if i == j else 1 for j in range(7)] for i in range(7)]}
    return record if curves is None else {**record, "curves": curves}


def _store(url: str, job: Job, curves: Mapping[str, list[float]] | None) -> None:
    attrs = {"method": job.method, "setup": job.setup, "profile": job.profile, "seed": job.seed, "recipe": job.recipe,
             "job_key": job.key}
    with trial_for_run(open_storage(url), TrialRequest(job.study_name, job.hparams(), attrs=attrs)) as trial:
        trial.complete(_record(job, curves))


def test_figures_draw_the_training_curves_of_table1_and_skip_runs_without(storage: str, tmp_path: Path):
    jobs = {(job.row, job.seed): job for job in EXPERIMENTS["table1"].jobs(("synth",), 2, "quick") if job.kind == "run"}
    for seed in (0, 1):
        _store(storage, jobs["SHOT", seed], {"loss": [1.0 - 0.1 * seed, 0.5], "im": [0.2, 0.4 + seed]})
        _store(storage, jobs["NRC", seed], {"loss": [-1.0, -2.0, -3.0], "im": [0.1, None, 0.3]})
    _store(storage, jobs["SHOT-IM", 0], None)  # stored before curves existed
    _store(storage, jobs["Source only", 0], {})  # trains nothing
    written = write_figures(open_storage(storage), tmp_path / "figures", profile="quick")
    for suffix in (".png", ".pdf", ".csv"):
        path = tmp_path / "figures" / f"{CURVES_NAME}_synth{suffix}"
        assert path in written and path.stat().st_size > 0
    data = pd.read_csv(tmp_path / "figures" / f"{CURVES_NAME}_synth.csv")
    assert list(data.columns) == ["method", "seed", "series", "epoch", "value"]
    assert set(data.method) == {"SHOT", "NRC"} and set(data.seed) == {0, 1}
    shot = data[(data.method == "SHOT") & (data.seed == 1)]
    assert shot[shot.series == "loss"].value.tolist() == pytest.approx([0.9, 0.5])
    nrc_im = data[(data.method == "NRC") & (data.series == "im") & (data.seed == 0)]
    assert nrc_im.epoch.tolist() == [0, 2]  # the epoch without a value is left out


def test_figures_without_any_curve_write_no_curve_figure(storage: str, tmp_path: Path):
    job = next(job for job in EXPERIMENTS["table1"].jobs(("synth",), 1, "quick") if job.row == "SHOT")
    _store(storage, job, None)
    written = write_figures(open_storage(storage), tmp_path, profile="quick")
    assert not any(path.name.startswith(CURVES_NAME) for path in written)

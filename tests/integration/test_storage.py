"""Results storage: one trial per run, never overwritten; failures and hard kills end as FAIL, storage valid."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from benchmark.store.storage import completed_records, open_storage
from benchmark.store.trial_runs import TrialRequest, trial_for_run
from methods.api import SearchFloat

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {"lr": SearchFloat(1e-3, 1e-1, log=True), "score": None}


def _record(accuracy: float, seed: int = 0) -> dict:
    return {"method": "m", "setting": "sfda", "setup": "s", "profile": "quick", "seed": seed, "accuracy": accuracy,
            "mean_class_accuracy": accuracy, "hparams": {"lr": 0.01, "score": "purity"}}


def _states(url: str, study: str = "run/m/s/quick") -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)]


def test_runs_add_trials_with_params_and_record(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = open_storage(url)
    for accuracy in (50.0, 60.0):
        with trial_for_run(store, TrialRequest("run/m/s/quick", {"lr": 0.01, "score": "purity"}, DECLARED, {"seed": 0})) as trial:
            trial.complete(_record(accuracy))
    trials = optuna.load_study(study_name="run/m/s/quick", storage=store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.value for t in trials] == [50.0, 60.0]
    assert trials[0].params == {"lr": 0.01}  # `score` has no declared distribution: kept in user attrs only
    assert trials[0].user_attrs["hparams"] == {"lr": 0.01, "score": "purity"}
    assert trials[0].distributions["lr"] == FloatDistribution(1e-3, 1e-1, log=True)
    assert [r["accuracy"] for r in completed_records(store)] == [50.0, 60.0]


def test_out_of_range_value_widens_the_stored_range(tmp_path):
    store = open_storage(f"sqlite:///{tmp_path / 'r.db'}")
    for lr in (0.01, 0.5):
        with trial_for_run(store, TrialRequest("run/m/s/quick", {"lr": lr}, DECLARED)) as trial:
            trial.complete(_record(50.0))
    trials = optuna.load_study(study_name="run/m/s/quick", storage=store).trials
    assert [t.params["lr"] for t in trials] == [0.01, 0.5]
    assert trials[1].distributions["lr"] == FloatDistribution(1e-3, 0.5, log=True)


def test_exception_marks_trial_failed(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(RuntimeError):
        with trial_for_run(open_storage(url), TrialRequest("run/m/s/quick", {"lr": 0.01}, DECLARED)):
            raise RuntimeError("boom")
    trial = optuna.load_study(study_name="run/m/s/quick", storage=open_storage(url)).trials[0]
    assert trial.state == TrialState.FAIL and "boom" in trial.user_attrs["error"]


# The child restores Python's Ctrl-C handler first: a process started from a background shell job (e.g.
# `nohup bash .ci/run &`) inherits SIGINT as ignored, and Python then leaves it ignored, as a user's
# terminal session never would.
_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from benchmark.store.storage import open_storage
    from benchmark.store.trial_runs import TrialRequest, trial_for_run
    with trial_for_run(open_storage(sys.argv[1]), TrialRequest("run/m/s/quick", {"lr": 0.01})):
        print("started", flush=True)
        time.sleep(120)
    """
)


def _start_child(url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_HEARTBEAT_SECONDS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "started"
    return child


def test_interrupted_run_fails_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    child = _start_child(url)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=30)
    assert _states(url) == [TrialState.FAIL]


def test_killed_run_fails_at_next_start_and_storage_stays_valid(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    child = _start_child(url)
    time.sleep(1.5)
    child.kill()  # SIGKILL: no cleanup runs in the child
    child.wait(timeout=30)
    assert _states(url) == [TrialState.RUNNING]
    connection = sqlite3.connect(tmp_path / "r.db")
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()
    monkeypatch.setenv("FERBENCH_HEARTBEAT_SECONDS", "1")
    time.sleep(3.5)  # past the grace period (3 heartbeats)
    store = open_storage(url)
    with trial_for_run(store, TrialRequest("run/m/s/quick", {"lr": 0.01}, DECLARED)) as trial:
        trial.complete(_record(55.0))
    assert _states(url) == [TrialState.FAIL, TrialState.COMPLETE]

"""Results storage on a real PostgreSQL server (started on loopback by the ``postgres_url`` fixture): records
round-trip, concurrent worker processes share one study, and a killed worker's trial is failed by heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from benchmark.store.storage import completed_records, open_storage
from benchmark.store.trial_runs import TrialRequest, trial_for_run
from methods.api import SearchFloat
from tests.postgres import create_database

ROOT = Path(__file__).resolve().parents[2]
STUDY = "run/m/s/quick"
DECLARED = {"lr": SearchFloat(1e-3, 1e-1, log=True), "score": None}


def _record(accuracy: float, lr: float = 0.01, seed: int = 0) -> dict:
    return {"method": "m", "setting": "sfda", "setup": "s", "profile": "quick", "seed": seed, "accuracy": accuracy,
            "mean_class_accuracy": accuracy, "hparams": {"lr": lr, "score": "purity"}}


def _fresh_database(postgres_url: str, name: str) -> str:
    """A new, empty database on the session's server (so its tables are created by the test itself)."""
    url = make_url(postgres_url)
    create_database(url.host, url.port, url.username, name)
    return url.set(database=name).render_as_string(hide_password=False)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=open_storage(url)).get_trials(deepcopy=False)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_HEARTBEAT_SECONDS": "1"}


def test_record_round_trips(postgres_url):
    url = _fresh_database(postgres_url, "round_trip")
    store = open_storage(url)
    assert store.engine.dialect.name == "postgresql"
    for accuracy, lr in ((50.0, 0.01), (60.0, 0.02)):
        with trial_for_run(store, TrialRequest(STUDY, {"lr": lr, "score": "purity"}, DECLARED, {"seed": 0})) as trial:
            trial.complete(_record(accuracy, lr))
    trials = _trials(url)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.value for t in trials] == [50.0, 60.0]
    assert [t.params for t in trials] == [{"lr": 0.01}, {"lr": 0.02}]
    assert trials[0].user_attrs["hparams"] == {"lr": 0.01, "score": "purity"}
    records = completed_records(open_storage(url))
    summary = [(r["accuracy"], r["hparams"]["lr"], r["trial"]["number"]) for r in records]
    assert summary == [(50.0, 0.01, 0), (60.0, 0.02, 1)]


WORKERS, TRIALS_EACH = 4, 5

# One worker: waits for the go file (so all workers hit the storage at once, its tables not yet created), then
# writes TRIALS_EACH trials, each with its own lr and accuracy.
_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from benchmark.store.storage import open_storage
    from benchmark.store.trial_runs import TrialRequest, trial_for_run
    from methods.api import SearchFloat
    url, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    store = open_storage(url)
    for i in range(count):
        lr, accuracy = round(0.001 * (1 + worker * count + i), 6), float(worker * 100 + i)
        declared = {"lr": SearchFloat(1e-3, 1e-1, log=True)}
        with trial_for_run(store, TrialRequest("run/m/s/quick", {"lr": lr}, declared, {"worker": worker})) as trial:
            trial.complete({"method": "m", "setup": "s", "seed": 0, "accuracy": accuracy,
                            "hparams": {"lr": lr}, "worker": worker})
    """
)


def test_concurrent_workers_share_one_study(postgres_url, tmp_path):
    url = _fresh_database(postgres_url, "workers")
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, url, str(w), str(TRIALS_EACH), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for w in range(WORKERS)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        go.touch()
        results = [(worker.wait(timeout=60), worker.stderr.read()) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [code for code, _ in results] == [0] * WORKERS, "\n".join(err for _, err in results)
    trials = _trials(url)
    assert len(trials) == WORKERS * TRIALS_EACH
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert sorted(t.number for t in trials) == list(range(WORKERS * TRIALS_EACH))
    # Every trial carries its own worker's run: params, hparams, value and record agree.
    expected = {(float(w * 100 + i), round(0.001 * (1 + w * TRIALS_EACH + i), 6)) for w in range(WORKERS)
                for i in range(TRIALS_EACH)}
    assert {(t.value, t.params["lr"]) for t in trials} == expected
    for t in trials:
        assert t.user_attrs["hparams"] == {"lr": t.params["lr"]} == {"lr": t.user_attrs["record"]["hparams"]["lr"]}
        assert t.user_attrs["record"]["worker"] == t.user_attrs["worker"]
    assert len(completed_records(open_storage(url))) == WORKERS * TRIALS_EACH


_SLEEPER = textwrap.dedent(
    """
    import sys, time
    from benchmark.store.storage import open_storage
    from benchmark.store.trial_runs import TrialRequest, trial_for_run
    with trial_for_run(open_storage(sys.argv[1]), TrialRequest("run/m/s/quick", {"lr": 0.01})):
        print("started", flush=True)
        time.sleep(120)
    """
)


def test_killed_worker_trial_fails_by_heartbeat(postgres_url, monkeypatch):
    url = _fresh_database(postgres_url, "killed")
    child = subprocess.Popen([sys.executable, "-c", _SLEEPER, url], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(1.5)
    finally:
        child.kill()  # SIGKILL: no cleanup runs in the child
        child.wait(timeout=30)
    assert [t.state for t in _trials(url)] == [TrialState.RUNNING]
    monkeypatch.setenv("FERBENCH_HEARTBEAT_SECONDS", "1")
    time.sleep(3.5)  # past the grace period (3 heartbeats)
    store = open_storage(url)
    with trial_for_run(store, TrialRequest(STUDY, {"lr": 0.01}, DECLARED)) as trial:
        trial.complete(_record(55.0))
    assert [t.state for t in _trials(url)] == [TrialState.FAIL, TrialState.COMPLETE]


def test_skips_saying_why_without_server(monkeypatch, tmp_path):
    """No initdb on PATH nor in Debian's directory: PostgresUnavailable names what was looked for."""
    from tests import postgres

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "_DEBIAN_BINDIRS", str(tmp_path / "none" / "*" / "bin"))
    with pytest.raises(postgres.PostgresUnavailable, match="initdb and pg_ctl are neither on PATH nor in"):
        with postgres.postgres_server():
            pass

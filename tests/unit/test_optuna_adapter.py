"""The Optuna internals ``benchmark.store.optuna_adapter`` relies on, checked against a real SQLite RDBStorage.

Each test names the assumption it checks, so that an Optuna release that changes one fails here, saying
which, before a sweep hands one grid point to two workers or leaves a dead worker's trial RUNNING forever.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from benchmark.store import optuna_adapter as adapter
from benchmark.store.optuna_adapter import (
    OptunaInternalsChanged,
    claim_waiting,
    create_running_trial,
    create_trial_from_template,
    fixed_params_of,
    live_trial,
    record_heartbeat,
    storage_of,
    stored_trial,
    trial_id,
)
from benchmark.store.storage import open_storage

CHANGED = f"Optuna {optuna.__version__} changed an internal that benchmark/store/optuna_adapter.py relies on: "


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'adapter.db'}"


@pytest.fixture
def study(url) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")


def _waiting(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def test_trial_id_names_the_same_stored_trial_for_a_live_and_a_frozen_trial(study):
    study.ask()
    trial = study.ask()
    frozen = study.get_trials(deepcopy=False)[1]
    assert isinstance(trial_id(trial), int), CHANGED + "Trial._trial_id is no longer an int"
    assert isinstance(trial_id(frozen), int), CHANGED + "FrozenTrial._trial_id is no longer an int"
    assert trial_id(trial) == trial_id(frozen), CHANGED + "Trial._trial_id and FrozenTrial._trial_id differ"
    assert storage_of(study).get_trial(trial_id(trial)).number == trial.number == 1, (
        CHANGED + "_trial_id no longer names the trial to the storage"
    )


def test_a_missing_internal_says_so():
    with pytest.raises(OptunaInternalsChanged, match=r"object\._trial_id.*optuna_adapter\.py"):
        trial_id(object())  # type: ignore[arg-type]
    with pytest.raises(OptunaInternalsChanged, match=r"Study\._storage"):
        storage_of(object())  # type: ignore[arg-type]


def test_storage_of_is_the_studys_storage_with_heartbeats(url, study):
    storage = storage_of(study)
    assert isinstance(storage, BaseStorage), CHANGED + "Study._storage is no longer a BaseStorage"
    assert callable(getattr(storage, "record_heartbeat", None)), CHANGED + "Study._storage has no record_heartbeat"
    assert storage.get_heartbeat_interval() is not None, CHANGED + "Study._storage loses the heartbeat interval"
    reloaded = optuna.load_study(study_name="s", storage=url)
    assert storage.get_study_id_from_name("s") == storage_of(reloaded).get_study_id_from_name("s")


def test_create_running_trial_fixes_its_params_and_leaves_waiting_trials_alone(study):
    study.enqueue_trial({"lr": 0.5})  # another worker's: ``study.ask()`` would take it
    trial = create_running_trial(study, {"lr": 0.01})
    assert isinstance(trial, Trial)
    assert stored_trial(storage_of(study), trial).state == TrialState.RUNNING
    assert trial.suggest_float("lr", 1e-3, 1.0, log=True) == 0.01, (
        CHANGED + "a trial's 'fixed_params' system attribute no longer fixes what suggest_* returns"
    )
    assert fixed_params_of(study, trial) == {"lr": 0.01}
    assert [t.params for t in _waiting(study)] == [{}] and len(_waiting(study)) == 1


def test_create_trial_from_template_keeps_the_templates_attributes(study):
    template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"a": 1}, system_attrs={"b": 2})
    trial = create_trial_from_template(study, template)
    stored = stored_trial(storage_of(study), trial)
    assert (stored.state, stored.user_attrs, stored.system_attrs["b"]) == (TrialState.RUNNING, {"a": 1}, 2)
    assert stored.number == trial.number == 0


def test_an_enqueued_trials_fixed_params_are_read_back(study):
    study.enqueue_trial({"lr": 0.02}, user_attrs={"job_key": "k"})
    study.enqueue_trial({})
    with_params, without = _waiting(study)
    for waiting in (with_params, without):
        assert claim_waiting(storage_of(study), waiting)
    assert fixed_params_of(study, live_trial(study, with_params)) == {"lr": 0.02}, (
        CHANGED + "Study.enqueue_trial no longer stores its params as the 'fixed_params' system attribute"
    )
    assert fixed_params_of(study, live_trial(study, without)) == {}


def test_claiming_a_waiting_trial_is_atomic(url, study):
    study.enqueue_trial({})
    waiting = _waiting(study)[0]
    storage = open_storage(url)
    assert claim_waiting(storage, waiting) is True
    assert stored_trial(storage, waiting).state == TrialState.RUNNING
    assert claim_waiting(open_storage(url), waiting) is False, (
        CHANGED + "set_trial_state_values(RUNNING) no longer refuses a trial that is not WAITING"
    )
    study.tell(live_trial(study, waiting), 1.0)
    assert claim_waiting(storage, waiting) is False  # finished by its claimer: Optuna raises, the adapter says no


def test_racing_workers_claim_each_waiting_trial_once(url, study):
    for _ in range(40):
        study.enqueue_trial({})
    waiting = _waiting(study)
    claims: list[list[int]] = [[], [], []]

    def worker(mine: list[int]) -> None:
        storage = open_storage(url)  # each worker its own connection, as worker processes have
        mine.extend(t.number for t in waiting if claim_waiting(storage, t))

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    claimed = sorted(n for mine in claims for n in mine)
    assert claimed == [t.number for t in waiting], CHANGED + "two workers claimed the same WAITING trial"


def test_a_heartbeat_is_recorded_and_keeps_a_trial_from_going_stale(url):
    # Heartbeat every second, stale after one (open_storage's grace period is three heartbeats: slower).
    storage = RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="beats", storage=storage)
    silent, stopped, alive = (create_running_trial(study, {}) for _ in range(3))
    record_heartbeat(storage, stopped)
    record_heartbeat(storage_of(study), alive)
    time.sleep(2.5)  # SQLite's CURRENT_TIMESTAMP counts whole seconds
    record_heartbeat(storage, alive)
    optuna.storages.fail_stale_trials(study)
    states = [stored_trial(storage, trial).state for trial in (silent, stopped, alive)]
    assert states[1] == TrialState.FAIL, CHANGED + "record_heartbeat no longer records a heartbeat that can go stale"
    assert states[2] == TrialState.RUNNING, CHANGED + "record_heartbeat no longer renews a trial's heartbeat"
    assert states[0] == TrialState.RUNNING, CHANGED + "a trial without a heartbeat is now failed as stale"


def test_live_trial_finishes_the_stored_trial(url, study):
    study.enqueue_trial({}, user_attrs={"job_key": "k"})
    waiting = _waiting(study)[0]
    assert claim_waiting(storage_of(study), waiting)
    trial = live_trial(study, waiting)
    assert (trial.number, trial.user_attrs) == (waiting.number, {"job_key": "k"})
    study.tell(trial, 42.0)
    stored = stored_trial(open_storage(url), waiting)  # as another process sees it
    assert (stored.state, stored.value) == (TrialState.COMPLETE, 42.0)


def test_no_private_optuna_attribute_outside_the_adapter():
    root = Path(adapter.__file__).resolve().parents[2]
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("benchmark", "methods", "datasets", "tests")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name not in ("optuna_adapter.py", "test_optuna_adapter.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(name in line for name in ("._storage", "._trial_id", "._study_id", "._cached_frozen_trial"))
    ]
    assert not offenders, f"private Optuna attributes outside benchmark/store/optuna_adapter.py: {offenders}"

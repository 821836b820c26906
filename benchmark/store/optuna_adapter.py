"""The one place that relies on Optuna internals (private attributes and internal conventions).

The harness claims, creates and heartbeats trials itself instead of going through ``Study.optimize``/``ask``
(see ``benchmark.store.trial_runs`` and ``benchmark.store.work_queue``). Optuna 5 offers no public way to
name a trial to its storage or to reach a study's storage, so these few functions read
``Trial._trial_id``/``FrozenTrial._trial_id`` and ``Study._storage``, and use Optuna's ``fixed_params``
system attribute (what ``Study.enqueue_trial`` stores and ``Trial.suggest_*`` returns). Everything else is
Optuna's public storage API (``BaseStorage.create_new_trial``, ``set_trial_state_values``,
``RDBStorage.record_heartbeat``...). ``tests/unit/test_optuna_adapter.py`` checks each assumption against
a real SQLite storage, so an Optuna release that changes one fails there, by name; at run time a missing
attribute raises ``OptunaInternalsChanged`` rather than a bare ``AttributeError``.

Nothing outside this module touches a private Optuna attribute.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial, TrialState

#: Optuna's system attribute for the params of an enqueued trial (``Study.enqueue_trial``): ``Trial.suggest_*``
#: returns these values for these names instead of sampling.
_FIXED_PARAMS = "fixed_params"


class OptunaInternalsChanged(RuntimeError):
    """An Optuna internal this harness relies on is gone (a new Optuna release): update this module."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Optuna {optuna.__version__} no longer has {what}, which benchmark/store/optuna_adapter.py "
                         "relies on; adapt that module (tests/unit/test_optuna_adapter.py shows what changed)")


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The storage's id of a trial (not its ``number``, which counts within a study): what storage calls take."""
    try:
        return trial._trial_id
    except AttributeError:
        raise OptunaInternalsChanged(f"{type(trial).__name__}._trial_id") from None


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (for an ``RDBStorage``, Optuna's caching wrapper around it)."""
    try:
        return study._storage
    except AttributeError:
        raise OptunaInternalsChanged("Study._storage") from None


def live_trial(study: optuna.Study, stored: Trial | FrozenTrial) -> Trial:
    """The ``Trial`` (to suggest, set attributes and ``tell``) of a trial of ``study`` (read from its storage, or
    another study object's ``Trial`` of it)."""
    return Trial(study, trial_id(stored))


def create_trial_from_template(study: optuna.Study, template: FrozenTrial) -> Trial:
    """A new trial of ``study`` with ``template``'s state and attributes (``BaseStorage.create_new_trial``).

    Unlike ``Study.add_trial`` this returns the trial, and unlike ``Study.ask`` it never takes a WAITING trial
    that another worker enqueued.
    """
    storage = storage_of(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    return Trial(study, storage.create_new_trial(study_id, template_trial=template))


def create_running_trial(study: optuna.Study, fixed_params: dict[str, Any]) -> Trial:
    """A new RUNNING trial of ``study`` whose ``suggest_*`` of each name in ``fixed_params`` returns its value
    (as for an enqueued trial)."""
    template = optuna.trial.create_trial(state=TrialState.RUNNING, system_attrs={_FIXED_PARAMS: fixed_params})
    return create_trial_from_template(study, template)


def fixed_params_of(study: optuna.Study, trial: Trial) -> dict[str, Any]:
    """The params ``trial`` was enqueued (or created by ``create_running_trial``) with; empty if none."""
    return storage_of(study).get_trial_system_attrs(trial_id(trial)).get(_FIXED_PARAMS) or {}


def claim_waiting(storage: BaseStorage, waiting: FrozenTrial) -> bool:
    """Move a WAITING trial to RUNNING, atomically: False when another worker claimed (or even finished) it
    first. On SQLite this needs ``storage.open_storage``'s ``BEGIN IMMEDIATE`` transactions."""
    try:
        return storage.set_trial_state_values(trial_id(waiting), TrialState.RUNNING)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def fail_waiting(storage: BaseStorage, waiting: FrozenTrial, error: str) -> bool:
    """Move a WAITING trial to FAIL with ``error`` (a refused launch withdraws what it enqueued); False when a
    worker claimed (or finished) it first."""
    try:
        storage.set_trial_user_attr(trial_id(waiting), "error", error)
        return storage.set_trial_state_values(trial_id(waiting), TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def record_heartbeat(storage: BaseStorage, trial: Trial | FrozenTrial) -> None:
    """Record that ``trial`` is alive now. A RUNNING trial is failed as stale (``fail_stale_trials``) only once it
    has a heartbeat older than the storage's grace period; one that never had a heartbeat is never failed."""
    storage.record_heartbeat(trial_id(trial))  # type: ignore[attr-defined]  # RDBStorage, or its caching wrapper


def stored_trial(storage: BaseStorage, trial: Trial | FrozenTrial) -> FrozenTrial:
    """``trial`` as its storage holds it now (state, value, attributes)."""
    return storage.get_trial(trial_id(trial))

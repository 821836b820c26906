"""A sweep's work queue on the results storage, with Optuna as the only scheduler.

Jobs are enqueued as WAITING trials (their params fixed, the job in user attributes); workers claim them one by
one (Optuna's atomic WAITING -> RUNNING transition, ``optuna_adapter.claim_waiting``; ``storage.open_storage``
makes it atomic on SQLite too) and run them inside that very trial (a ``ClaimedTrial``); a refused launch
withdraws what it enqueued. ``trials_by_key`` tells which jobs have trials, in which ``TrialStatus``.

A job's stored form is byte for byte what committed records hold: the user attributes ``job`` (its
``as_attrs()``), ``job_key`` and ``recipe``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, Protocol

import optuna

from benchmark.store.optuna_adapter import claim_waiting, fail_waiting, live_trial, record_heartbeat
from benchmark.store.study_scan import Storage, StoredTrial, TrialStatus, iter_trials
from benchmark.store.trial_runs import ClaimedTrial, fixed_params
from methods.declarations import SearchSpace


class QueuedJob(Protocol):
    """What the store needs of a job to queue it (``benchmark.orchestration.experiments.Job`` is one)."""

    @property
    def study_name(self) -> str:
        """The study its trial goes to."""

    @property
    def key(self) -> str:
        """Its identity (``benchmark.store.identity``)."""

    @property
    def recipe(self) -> str:
        """Its recipe fingerprint."""

    def as_attrs(self) -> dict[str, Any]:
        """Its JSON-ready form (the ``job`` user attribute)."""

    def queued_hparams(self) -> tuple[dict[str, Any], dict[str, SearchSpace | None]]:
        """The hyperparameters fixed when it is enqueued and their declared spaces (a search's: none)."""


def _prepare(storage: Storage, names: Iterable[str]) -> dict[str, optuna.Study]:
    """Each study by name, created if missing, with stale RUNNING trials failed first."""
    studies = {}
    for name in sorted(set(names)):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        optuna.storages.fail_stale_trials(study)
        studies[name] = study
    return studies


def trials_by_key(storage: Storage, study_names: Iterable[str], keys: Iterable[str]) -> dict[str, list[StoredTrial]]:
    """The stored trials of each job key (in ``keys``' order), from ``study_names``; the studies are created if
    missing (no trial is), and their stale RUNNING trials failed first."""
    found: dict[str, list[StoredTrial]] = {key: [] for key in keys}
    names = sorted(_prepare(storage, study_names))
    for trial in iter_trials(storage, study_names=names):
        key = trial.key
        if key in found:
            found[key].append(trial)
    return found


def enqueue(storage: Storage, jobs: Sequence[QueuedJob]) -> None:
    """Add one WAITING trial per job: the job in user attributes, its fixed hyperparameters as params."""
    studies = _prepare(storage, (job.study_name for job in jobs))
    for job in jobs:
        attrs: dict[str, Any] = {"job": job.as_attrs(), "job_key": job.key, "recipe": job.recipe}
        studies[job.study_name].enqueue_trial(fixed_params(*job.queued_hparams()), user_attrs=attrs)


def claim(storage: Storage, study_names: Sequence[str], keys: Collection[str]) -> ClaimedTrial | None:
    """Take one WAITING trial of these studies whose job key is in ``keys`` (atomically: two workers never get
    the same one), or None. Trials of other sweeps waiting in the same studies are left to those sweeps. The
    trial's ``job_attrs`` hold its job (``as_attrs()``)."""
    for waiting in iter_trials(storage, (TrialStatus.WAITING,), study_names):
        if waiting.attrs.get("job_key") not in keys:
            continue
        if not claim_waiting(storage, waiting.frozen):
            continue  # another worker was first
        record_heartbeat(storage, waiting.frozen)
        return ClaimedTrial(storage, waiting.study, live_trial(waiting.study, waiting.frozen), waiting.attrs["job"])
    return None


def withdraw(storage: Storage, trials: Iterable[StoredTrial], error: str) -> None:
    """Fail those of ``trials`` still WAITING with ``error``: no worker will claim them (the next sweep retries)."""
    for trial in trials:
        if trial.status is TrialStatus.WAITING:
            fail_waiting(storage, trial.frozen, error)

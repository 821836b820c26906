"""Trials a run writes: created (or claimed by a sweep worker) RUNNING, kept alive, finished once.

A trial is created RUNNING when the run starts (its params are the run's hyperparameters), kept alive by a
heartbeat thread, and finished COMPLETE with the accuracy as its value and the whole run record as the
user attribute ``record``, or FAIL on any exception or interrupt. A run killed hard (SIGKILL, power loss)
stops its heartbeat; the next run on the same study marks that trial FAIL (``fail_stale_trials``), so no
trial is ever lost or left half-written. Orchestration holds such a trial as a ``ClaimedTrial``, an opaque
handle: it never sees an Optuna type.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import Trial, TrialState

from benchmark.store.optuna_adapter import (
    create_running_trial,
    fixed_params_of,
    live_trial,
    record_heartbeat,
    storage_of,
    stored_trial,
)
from benchmark.store.search_space import optuna_distribution
from benchmark.store.storage import heartbeat_seconds
from benchmark.store.study_scan import Storage, TrialStatus
from methods.declarations import SearchSpace


@dataclass(frozen=True)
class TrialRequest:
    """What a trial is for: its study and the run's hyperparameters and attributes.

    Attributes:
        study_name: ``run/<method>/<setup>/<profile>``, ``probe/<setup>/<profile>`` or a search's study.
        hparams: the fully resolved hyperparameters (stored as params where ``declared`` gives a distribution,
            and in full as the ``hparams`` user attribute).
        declared: each hyperparameter's declared search space (None: kept only in the record).
        attrs: further user attributes (method, setup, profile, seed, ...).
    """

    study_name: str
    hparams: dict[str, Any]
    declared: dict[str, SearchSpace | None] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def _param_distribution(value: Any, space: SearchSpace | None) -> BaseDistribution | None:
    """How ``value`` is stored as a trial param: under its declared space's distribution, a numeric range widened
    to contain it if needed (Optuna requires one distribution kind per name within a study); None (kept only in
    the record) for a hyperparameter declared without a search space or a value outside categorical choices.
    """
    declared = None if space is None else optuna_distribution(space)
    if isinstance(declared, FloatDistribution) and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = min(declared.low, value), max(declared.high, value)
        if declared.log and low <= 0:
            return None
        return FloatDistribution(low, high, log=declared.log) if declared.step is None else declared
    if isinstance(declared, IntDistribution) and isinstance(value, int) and not isinstance(value, bool):
        return IntDistribution(min(declared.low, value), max(declared.high, value), log=declared.log, step=declared.step)
    if isinstance(declared, CategoricalDistribution) and value in declared.choices:
        return declared
    return None


def suggest(trial: Trial, name: str, space: SearchSpace) -> Any:
    """The value a sampler draws for ``name`` from ``space`` (or a fixed trial's value)."""
    return _suggest(trial, name, optuna_distribution(space))


def _suggest(trial: Trial, name: str, distribution: BaseDistribution) -> Any:
    """``trial.suggest_*`` for ``distribution``'s kind."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    return trial.suggest_categorical(name, distribution.choices)


def fixed_params(hparams: dict[str, Any], declared: dict[str, SearchSpace | None]) -> dict[str, Any]:
    """The hyperparameters stored as trial params (those with a distribution; see ``_param_distribution``),
    for ``Study.enqueue_trial``."""
    return {name: value for name, value in hparams.items() if _param_distribution(value, declared.get(name)) is not None}


def _suggest_fixed(trial: Trial, hparams: dict[str, Any], declared: dict[str, SearchSpace | None]) -> None:
    """Record the params of a trial created with ``fixed_params`` (the suggestions return the fixed values)."""
    for name in fixed_params(hparams, declared):
        _suggest(trial, name, _param_distribution(hparams[name], declared.get(name)))


def _heartbeat(storage: BaseStorage, trial: Trial, stop: threading.Event) -> None:
    while not stop.wait(heartbeat_seconds()):
        record_heartbeat(storage, trial)


@dataclass(frozen=True)
class ClaimedTrial:
    """A RUNNING trial this process runs: made by ``trial_for_run``, or claimed by a sweep worker
    (``benchmark.store.work_queue.claim``). The only way orchestration writes a trial.

    Attributes:
        storage, study, trial: where it lives (``benchmark.store`` only).
        job_attrs: the ``job`` user attribute a sweep enqueued it with (empty for a trial a run made).
    """

    storage: Storage = field(repr=False)
    study: optuna.Study = field(repr=False)
    trial: Trial = field(repr=False)
    job_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def study_name(self) -> str:
        """The study it belongs to."""
        return self.study.study_name

    @property
    def number(self) -> int:
        """Its number within the study."""
        return self.trial.number

    def seeded(self, seed: int) -> ClaimedTrial:
        """This trial, its ``suggest`` drawn by a random sampler seeded with ``seed`` (a search trial's slot).

        Random search (DomainBed's): no draw depends on a stored result, so every selection rule, honest or
        oracle, can be applied afterwards to the same trials without the search having been steered by one.
        """
        sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.load_study(study_name=self.study.study_name, storage=self.storage, sampler=sampler)
        # Optuna's cached RDB storage learns a trial's study when it reads the study's trials; a random sampler
        # reads none, and a suggest on a trial the cache has not seen fails (KeyError): read them once.
        study.get_trials(deepcopy=False)
        return replace(self, study=study, trial=live_trial(study, self.trial))

    def suggest(self, name: str, space: SearchSpace) -> Any:
        """The value the study's sampler draws for ``name`` from ``space`` (or the trial's fixed value)."""
        return suggest(self.trial, name, space)

    def report(self, value: float, step: int) -> None:
        """An intermediate value (a training curve's point at epoch ``step``; what optuna-dashboard plots)."""
        self.trial.report(value, step=step)

    def set_attr(self, name: str, value: Any) -> None:
        """Set the user attribute ``name`` (JSON-ready ``value``)."""
        self.trial.set_user_attr(name, value)

    def complete(self, record: dict[str, Any], value: float | None = None) -> None:
        """Attach the run record and finish COMPLETE with ``value`` (default: the accuracy) as its value.

        No selection reads a trial's value: a search's rules read the records (``orchestration.selection``).
        ``record`` gains ``trial`` (its study and number).
        """
        record["trial"] = {"study": self.study.study_name, "number": self.trial.number}
        self.trial.set_user_attr("record", json.loads(json.dumps(record, default=str)))
        self.study.tell(self.trial, record["accuracy"] if value is None else value)

    def prune(self) -> None:
        """Finish PRUNED: the job cannot run here (a probe's unavailable backbone), and counts as done."""
        self.study.tell(self.trial, state=TrialState.PRUNED)

    def fail(self, error: BaseException) -> None:
        """Finish FAIL, with ``error`` (type and message, at most 2000 characters) as the ``error`` attribute."""
        self.trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
        self.study.tell(self.trial, state=TrialState.FAIL)

    def outcome(self) -> tuple[TrialStatus, float | None]:
        """Its status and value as the storage holds them now."""
        stored = stored_trial(self.storage, self.trial)
        return TrialStatus.of(stored.state), stored.value

    def fail_if_running(self, error: BaseException) -> None:
        """``fail`` unless it is finished already (the run failed it, or completed it before raising)."""
        if self.outcome()[0] is TrialStatus.RUNNING:
            self.fail(error)


def claim_new_trial(storage: Storage, request: TrialRequest) -> ClaimedTrial:
    """Create a RUNNING trial in ``request.study_name`` whose params are ``request.hparams`` and whose user
    attributes are ``request.attrs`` plus ``hparams`` (the full dict, including values that have no distribution)."""
    hparams, declared = request.hparams, request.declared
    study = optuna.create_study(study_name=request.study_name, storage=storage, direction="maximize", load_if_exists=True)
    optuna.storages.fail_stale_trials(study)
    # The trial is created RUNNING with its own fixed params, not enqueued + ``study.ask()``: ask() takes the
    # study's oldest WAITING trial, which with several workers on one study is often another worker's.
    trial = create_running_trial(study, fixed_params(hparams, declared))
    _suggest_fixed(trial, hparams, declared)
    trial.set_user_attr("hparams", hparams)
    for key, value in request.attrs.items():
        trial.set_user_attr(key, value)
    return ClaimedTrial(storage, study, trial)


@contextmanager
def running(claimed: ClaimedTrial) -> Iterator[None]:
    """Keep the trial (RUNNING) alive with a heartbeat thread; mark it FAIL if the body raises or is
    interrupted. The body finishes it with ``ClaimedTrial.complete``."""
    storage = storage_of(claimed.study)
    record_heartbeat(storage, claimed.trial)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(storage, claimed.trial, stop), daemon=True)
    beat.start()
    try:
        yield
    except BaseException as error:
        stop.set()
        claimed.fail(error)
        raise
    finally:
        stop.set()
        beat.join(timeout=5)


@contextmanager
def trial_for_run(
    storage: Storage, request: TrialRequest, claimed: ClaimedTrial | None = None
) -> Iterator[ClaimedTrial]:
    """A RUNNING trial whose params are ``request.hparams``; marked FAIL if the body raises (or is interrupted).

    ``claimed``: a trial a sweep worker already claimed (``benchmark.store.work_queue.claim``) instead of a new one.
    The caller finishes it with ``trial.complete(record)`` inside the ``with`` block.
    """
    if claimed is None:
        claimed = claim_new_trial(storage, request)
    else:
        if fixed_params_of(claimed.study, claimed.trial):  # a sweep's grid point, enqueued with its params
            _suggest_fixed(claimed.trial, request.hparams, request.declared)
        for key, value in {"hparams": request.hparams, **request.attrs}.items():
            claimed.trial.set_user_attr(key, value)
    with running(claimed):
        yield claimed

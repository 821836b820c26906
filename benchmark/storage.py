"""Results storage: every run is one Optuna trial in an RDB storage (SQLite by default, any SQLAlchemy URL).

A trial is created RUNNING when the run starts (its params are the run's hyperparameters), kept alive by a
heartbeat thread, and finished COMPLETE with the accuracy as its value and the whole run record as the
user attribute ``record``, or FAIL on any exception or interrupt. A run killed hard (SIGKILL, power loss)
stops its heartbeat; the next run on the same study marks that trial FAIL (``fail_stale_trials``), so no
trial is ever lost or left half-written.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial, TrialState

from datasets.registry import home

def heartbeat_seconds() -> int:
    """Seconds between heartbeats of a running trial (``FERBENCH_HEARTBEAT_SECONDS``, default 10)."""
    return int(os.environ.get("FERBENCH_HEARTBEAT_SECONDS", "10"))


def grace_seconds() -> int:
    """A RUNNING trial whose last heartbeat is older than this is failed (3 heartbeats)."""
    return 3 * heartbeat_seconds()


optuna.logging.set_verbosity(optuna.logging.WARNING)
# Heartbeats are used here with ask/tell rather than Study.optimize, on purpose (see the module docstring).
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def default_storage_url() -> str:
    """``sqlite:///$FERBENCH_HOME/results.db``."""
    path = home() / "results.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_storage(url: str | None = None) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeats (SQLite waits up to 60 s on a locked database)."""
    url = url or default_storage_url()
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(
        url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_seconds(), grace_period=grace_seconds()
    )


def _param_distribution(value: Any, declared: BaseDistribution | None) -> BaseDistribution | None:
    """How ``value`` is stored as a trial param: under its declared distribution, a numeric range widened to
    contain it if needed (Optuna requires one distribution kind per name within a study); None (kept only in
    the record) for a hyperparameter declared without a distribution or a value outside categorical choices.
    """
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


def _suggest(trial: Trial, name: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    return trial.suggest_categorical(name, distribution.choices)


def _heartbeat(storage: optuna.storages.RDBStorage, trial_id: int, stop: threading.Event) -> None:
    while not stop.wait(heartbeat_seconds()):
        storage.record_heartbeat(trial_id)


@contextmanager
def trial_for_run(
    storage: optuna.storages.RDBStorage,
    study_name: str,
    hparams: dict[str, Any],
    declared: dict[str, BaseDistribution | None],
    attrs: dict[str, Any],
) -> Iterator[tuple[optuna.Study, Trial]]:
    """A RUNNING trial whose params are ``hparams``; marked FAIL if the body raises (or is interrupted).

    The caller finishes it with ``complete(study, trial, record)`` inside the ``with`` block.
    """
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize", load_if_exists=True)
    optuna.storages.fail_stale_trials(study)
    stored = {name: _param_distribution(value, declared.get(name)) for name, value in hparams.items()}
    study.enqueue_trial({name: hparams[name] for name, d in stored.items() if d is not None}, skip_if_exists=False)
    trial = study.ask()
    for name, distribution in stored.items():
        if distribution is not None:
            _suggest(trial, name, distribution)
    trial.set_user_attr("hparams", hparams)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    storage.record_heartbeat(trial._trial_id)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(storage, trial._trial_id, stop), daemon=True)
    beat.start()
    try:
        yield study, trial
    except BaseException as error:
        stop.set()
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
        study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        stop.set()
        beat.join(timeout=5)


def complete(study: optuna.Study, trial: Trial, record: dict[str, Any]) -> None:
    """Attach the run record and finish the trial COMPLETE with the accuracy as its value."""
    record["trial"] = {"study": study.study_name, "number": trial.number}
    trial.set_user_attr("record", json.loads(json.dumps(record, default=str)))
    study.tell(trial, record["accuracy"])


def completed_records(storage: optuna.storages.RDBStorage) -> list[dict[str, Any]]:
    """Every completed run record in the storage, across studies."""
    records = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "record" in trial.user_attrs:
                records.append(trial.user_attrs["record"])
    return records

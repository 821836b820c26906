"""Results storage: every run is one Optuna trial in an RDB storage (SQLite by default, any SQLAlchemy URL).

A trial is created RUNNING when the run starts (its params are the run's hyperparameters), kept alive by a
heartbeat thread, and finished COMPLETE with the accuracy as its value and the whole run record as the
user attribute ``record``, or FAIL on any exception or interrupt. A run killed hard (SIGKILL, power loss)
stops its heartbeat; the next run on the same study marks that trial FAIL (``fail_stale_trials``), so no
trial is ever lost or left half-written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import Trial, TrialState
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from benchmark.config.errors import UserError
from benchmark.store.optuna_adapter import create_running_trial, fixed_params_of, record_heartbeat, storage_of
from benchmark.store.search_space import optuna_distribution
from datasets.errors import DatasetError
from datasets.registry import writable_home
from methods.api import SearchSpace


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


URL_FORMS = "sqlite:///PATH or postgresql://USER@HOST/DB"
CLUSTER_HINT = 'pip install -e ".[cluster]"'
SQLITE_MAGIC = b"SQLite format 3\x00"
# A 0-byte results.db may be one another process has just created and not yet written; wait this long for
# its header before calling it truncated.
EMPTY_FILE_GRACE_SECONDS = 1.0


def default_storage_url() -> str:
    """``sqlite:///$FERBENCH_HOME/results.db``; UserError if FERBENCH_HOME is not (or cannot be made) a
    writable folder."""
    try:
        folder = writable_home()
    except DatasetError as error:
        raise UserError(str(error)) from error
    return f"sqlite:///{folder / 'results.db'}"


def _os_reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()


def normalize_storage_url(storage_url: str) -> URL:
    """``storage_url`` parsed, with a PostgreSQL URL that names no driver (``postgresql://``, ``postgres://``)
    bound to psycopg2 (the ``cluster`` extra's driver; SQLAlchemy's own default is psycopg 3). UserError for
    a string that is not a database URL, an unknown database kind, or a driver that is not installed."""
    try:
        url = make_url(storage_url)
    except sqlalchemy.exc.ArgumentError as error:
        raise UserError(f"--storage {storage_url!r} is not a database URL (expected {URL_FORMS})") from error
    if url.drivername in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg2") is not None:
            url = url.set(drivername="postgresql+psycopg2")
        elif url.drivername == "postgres":
            url = url.set(drivername="postgresql")
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError as error:
        raise UserError(f"--storage {shown!r}: unknown database kind {url.drivername!r} (expected {URL_FORMS})") from error
    try:
        dialect.import_dbapi()
    except ImportError as error:
        hint = f"; {CLUSTER_HINT}" if url.get_backend_name() == "postgresql" else ""
        raise UserError(f"--storage {shown!r}: the database driver {url.get_driver_name()!r} is not installed{hint}") from error
    return url


def _sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL (None: in-memory or a ``file:`` URI)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return None
    return Path(database).expanduser()


def _not_sqlite(path: Path) -> UserError:
    return UserError(f"results storage {path} is not an SQLite database (corrupt or overwritten); move it away or "
                     "pass --storage")


def _check_sqlite_file(path: Path) -> None:
    """UserError unless ``path`` is an SQLite database or can become one: its folder exists, and an existing
    file is not empty (a truncated results.db would silently start over) and starts with SQLite's header."""
    try:
        if not path.exists():
            if not path.parent.is_dir():
                raise UserError(f"results storage {path}: folder {path.parent} does not exist")
            return
        if not path.is_file():
            raise UserError(f"results storage {path} is not a file")
        deadline = time.monotonic() + EMPTY_FILE_GRACE_SECONDS
        while path.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        with path.open("rb") as file:
            header = file.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise UserError(f"results storage {path} cannot be read ({_os_reason(error)})") from error
    if not header:
        raise UserError(f"results storage {path} is empty (0 bytes: truncated?); move it away or pass --storage")
    if header != SQLITE_MAGIC:
        raise _not_sqlite(path)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _storage_error(error: sqlalchemy.exc.DBAPIError, url: URL) -> UserError | None:
    """The UserError a user-caused failure to open ``url`` is (None: not one; the error stands)."""
    reason = _first_line(error)
    low = reason.lower()
    path = _sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    if path is not None:
        if "file is not a database" in low or "malformed" in low:
            return _not_sqlite(path)
        if "unable to open database file" in low or "readonly database" in low:
            return UserError(f"results storage {path} cannot be opened for writing (check the file and its folder's permissions)")
        return None
    if error.statement is not None or not isinstance(error, sqlalchemy.exc.OperationalError):
        return None  # failed while working, not while connecting: not the user's doing
    if url.get_backend_name() != "postgresql":
        return UserError(f"cannot connect to the database at {url.render_as_string(hide_password=True)} ({reason})")
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "connection refused" in low:
        return UserError(f"cannot reach the PostgreSQL server at {where} (connection refused)")
    if "could not translate host name" in low or "name or service not known" in low:
        return UserError(f"cannot reach the PostgreSQL server at {where} (unknown host {url.host!r})")
    if "timeout" in low or "timed out" in low:
        return UserError(f"cannot reach the PostgreSQL server at {where} (timed out)")
    return UserError(f"the PostgreSQL server at {where} refused the connection: {reason}")


def open_storage(storage_url: str | None = None) -> optuna.storages.RDBStorage:
    """The Optuna RDB storage at ``storage_url`` (default ``default_storage_url()``), with heartbeats (SQLite
    waits up to 60 s on a locked database).

    SQLite has no row locks, and Python's driver starts a transaction only at the first write, so Optuna's
    read-check-write of a trial's state (how a WAITING trial is claimed) could interleave between two
    processes and hand one grid point to two workers. On SQLite every transaction therefore starts with
    ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe for pysqlite), which takes the database's write lock
    first; PostgreSQL does the same through Optuna's ``SELECT ... FOR UPDATE``.

    A user-caused failure (not a database URL, unknown database kind, missing driver, unreachable server,
    missing folder, empty or non-SQLite results file) is a one-line UserError, chained to the original.
    """
    url = normalize_storage_url(storage_url or default_storage_url())
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and (path := _sqlite_path(url)) is not None:
        _check_sqlite_file(path)
    engine_kwargs = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {}
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(
                url.render_as_string(hide_password=False), engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_seconds(), grace_period=grace_seconds(),
            )
            break
        except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as error:
            # Workers opening a fresh PostgreSQL database at once race to create Optuna's tables ("duplicate
            # key ... pg_type_typname_nsp_index"); the loser's next try finds them made.
            if attempt == 4:
                cause = error if isinstance(error, sqlalchemy.exc.DBAPIError) else error.__cause__
                user_error = _storage_error(cause, url) if isinstance(cause, sqlalchemy.exc.DBAPIError) else None
                if user_error is not None:
                    raise user_error from error
                raise
            time.sleep(0.2 * (attempt + 1))
    if sqlite:
        event.listen(storage.engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


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


def claim_new_trial(storage: optuna.storages.RDBStorage, request: TrialRequest) -> tuple[optuna.Study, Trial]:
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
    return study, trial


@contextmanager
def running(study: optuna.Study, trial: Trial) -> Iterator[None]:
    """Keep ``trial`` (RUNNING) alive with a heartbeat thread; mark it FAIL if the body raises or is
    interrupted. The body finishes it with ``complete``."""
    storage = storage_of(study)
    record_heartbeat(storage, trial)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(storage, trial, stop), daemon=True)
    beat.start()
    try:
        yield
    except BaseException as error:
        stop.set()
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
        study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        stop.set()
        beat.join(timeout=5)


@contextmanager
def trial_for_run(
    storage: optuna.storages.RDBStorage, request: TrialRequest, claimed: tuple[optuna.Study, Trial] | None = None
) -> Iterator[tuple[optuna.Study, Trial]]:
    """A RUNNING trial whose params are ``request.hparams``; marked FAIL if the body raises (or is interrupted).

    ``claimed``: a trial a sweep worker already claimed (``benchmark.orchestration.sweep``) instead of a new one. The caller
    finishes it with ``complete(study, trial, record)`` inside the ``with`` block.
    """
    if claimed is None:
        study, trial = claim_new_trial(storage, request)
    else:
        study, trial = claimed
        if fixed_params_of(study, trial):
            _suggest_fixed(trial, request.hparams, request.declared)  # a sweep's grid point, enqueued with its params
        for key, value in {"hparams": request.hparams, **request.attrs}.items():
            trial.set_user_attr(key, value)
    with running(study, trial):
        yield study, trial


def complete(study: optuna.Study, trial: Trial, record: dict[str, Any], value: float | None = None) -> None:
    """Attach the run record and finish the trial COMPLETE with ``value`` (default: the accuracy) as its value.

    A search study's value is its objective (an unsupervised validator, or the accuracy for an oracle search).
    """
    record["trial"] = {"study": study.study_name, "number": trial.number}
    trial.set_user_attr("record", json.loads(json.dumps(record, default=str)))
    study.tell(trial, record["accuracy"] if value is None else value)


def completed_records(storage: optuna.storages.RDBStorage) -> list[dict[str, Any]]:
    """Every completed run record in the storage, across studies."""
    records = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "record" in trial.user_attrs:
                records.append(trial.user_attrs["record"])
    return records

"""Results storage: every run is one Optuna trial in an RDB storage (SQLite by default, any SQLAlchemy URL).

This module opens it (``open_storage``: URL checks, one-line errors, heartbeats, atomic claims on SQLite).
How a run writes its trial is ``benchmark.store.trial_runs``; how a sweep queues jobs, ``benchmark.store.work_queue``;
how trials are read, ``benchmark.store.study_scan``.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from benchmark.config.errors import UserError
from benchmark.store.study_scan import Storage, TrialStatus, iter_trials
from datasets.errors import DatasetError
from datasets.registry import writable_home


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


def open_storage(storage_url: str | None = None) -> Storage:
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


def completed_records(storage: Storage) -> list[dict[str, Any]]:
    """Every completed run record in the storage, across studies."""
    return [trial.attrs["record"] for trial in iter_trials(storage, (TrialStatus.COMPLETE,)) if "record" in trial.attrs]

"""A throw-away PostgreSQL server on loopback for the tests (not a test module).

``postgres_server()`` finds ``initdb`` and ``pg_ctl`` (on PATH, then in Debian's ``/usr/lib/postgresql/*/bin``),
creates a cluster in a fresh temporary directory (trust authentication, no fsync), starts it on 127.0.0.1 at a
free port with its unix socket inside that directory, creates the database ``ferbench`` and yields its
SQLAlchemy URL. The server is stopped and the directory removed afterwards, also when anything fails.

PostgreSQL refuses to run as root; as root the cluster is owned by, and the server run as, the ``postgres``
user (created by Debian's package) or else ``nobody``, through ``runuser`` (or ``su``).

When no server can be found or started, ``PostgresUnavailable`` says why (the fixture in conftest.py turns it
into a skip).
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "ferbench"
_DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found or started here; the message says what was tried and why."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: from PATH first (symlinks resolved), then the newest
    of Debian's ``/usr/lib/postgresql/*/bin``."""
    candidates = []
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates += [Path(found).resolve().parent, Path(found).parent]
    def version(bindir: str) -> list[int]:
        return [int(x) if x.isdigit() else 0 for x in Path(bindir).parent.name.split(".")]

    candidates += [Path(p) for p in sorted(glob.glob(_DEBIAN_BINDIRS), key=version, reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return bindir
    raise PostgresUnavailable(
        f"no PostgreSQL server binaries: initdb and pg_ctl are neither on PATH nor in {_DEBIAN_BINDIRS} "
        "(install Debian's package `postgresql`; .ci/run does)"
    )


def _server_user() -> tuple[str, list[str]]:
    """(user owning the cluster, command prefix that runs a command as that user)."""
    if os.geteuid() != 0:
        return getpass.getuser(), []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return user, ["runuser", "-u", user, "--"]
        if shutil.which("su"):
            return user, ["su", "-s", "/bin/sh", "-c", "{command}", user]
        raise PostgresUnavailable(
            f"running as root (PostgreSQL refuses root) and neither runuser nor su is here to run as {user!r}"
        )
    raise PostgresUnavailable(
        "running as root (PostgreSQL refuses root) and there is no `postgres` or `nobody` user to run it as"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as(prefix: list[str], command: list[str]) -> list[str]:
    """``command`` run through ``prefix`` (runuser takes the arguments as they are, su one shell string)."""
    if "{command}" in prefix:
        return [shlex.join(command) if part == "{command}" else part for part in prefix]
    return prefix + command


def _run(prefix: list[str], command: list[str], what: str, timeout: float = 120) -> None:
    try:
        done = subprocess.run(_as(prefix, command), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PostgresUnavailable(f"{what} failed: {error}") from error
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise PostgresUnavailable(f"{what} failed (exit {done.returncode}): {output}")


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def create_database(host: str, port: int, user: str, name: str) -> None:
    """``CREATE DATABASE name`` on the server, retried while it is still coming up."""
    import psycopg2  # the driver of the `dev` extra; missing it is an install error, not a reason to skip

    deadline = time.monotonic() + 30
    while True:
        try:
            connection = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=5)
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


@contextmanager
def postgres_server(tmp_dir: str | os.PathLike | None = None) -> Iterator[str]:
    """Start a throw-away server and yield ``postgresql+psycopg2://USER@127.0.0.1:PORT/ferbench``.

    ``tmp_dir`` holds the cluster's directory. Default: ``/tmp`` rather than ``$TMPDIR``, as the server's user
    (not root) must reach it and a unix socket's path must stay under ~100 characters.
    """
    bindir = find_bindir()
    user, as_user = _server_user()
    if tmp_dir is None and os.access("/tmp", os.W_OK | os.X_OK):
        tmp_dir = "/tmp"
    root = Path(tempfile.mkdtemp(prefix="ferbench-pg-", dir=tmp_dir))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    started = False
    try:
        sockets.mkdir()
        if as_user:
            entry = pwd.getpwnam(user)
            for path in (root, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        _run(as_user, [str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
                       "--no-locale", "--no-sync"], f"initdb ({bindir / 'initdb'}, as {user})")
        for attempt in range(3):  # a free port can be taken by someone else before the server binds it
            port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {shlex.quote(str(sockets))} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                _run(as_user, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                               "-o", options, "start"], f"pg_ctl start (as {user}, port {port})")
                started = True
                break
            except PostgresUnavailable as error:
                if attempt == 2:
                    raise PostgresUnavailable(f"{error}\nserver log:\n{_tail(log)}") from error
        try:
            create_database("127.0.0.1", port, user, DATABASE)
        except Exception as error:  # noqa: BLE001 - reported with the server's log
            if type(error).__name__ == "ModuleNotFoundError":
                raise
            raise PostgresUnavailable(f"cannot connect to the started server on 127.0.0.1:{port}: {error}\n"
                                      f"server log:\n{_tail(log)}") from error
        yield f"postgresql+psycopg2://{user}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"]
            subprocess.run(_as(as_user, stop), capture_output=True, timeout=90)
        shutil.rmtree(root, ignore_errors=True)

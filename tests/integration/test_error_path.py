"""One error path: a user-caused storage or FERBENCH_HOME failure is one `error:` line on stderr and a
non-zero exit (no traceback); `--debug` / FERBENCH_DEBUG=1 shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.config.errors import UserError
from benchmark.store import storage
from benchmark.store.storage import normalize_storage_url, open_storage

ROOT = Path(__file__).resolve().parents[2]
# Port 1 on the loopback address: nothing listens there, so the connection is refused at once.
UNREACHABLE = "postgresql://user@127.0.0.1:1/db"


def _cli(tmp_path: Path, *args: str, home: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key != "FERBENCH_DEBUG"}
    env = {**base, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1", "FERBENCH_HOME": str(home or tmp_path / "home"), **env}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def _corrupt(tmp_path: Path) -> str:
    path = tmp_path / "results.db"
    path.write_bytes(b"these are not the bytes of an SQLite database\n" * 40)
    return str(path)


def _truncated(tmp_path: Path) -> str:
    path = tmp_path / "results.db"
    path.write_bytes(b"")
    return str(path)


def _home_is_file(tmp_path: Path) -> Path:
    path = tmp_path / "home-file"
    path.write_text("not a folder\n")
    return path


# (id, CLI arguments after the command, FERBENCH_HOME maker or None, expected message ({t}: the test's tmp_path))
CASES = [
    ("not-a-url", lambda t: ["--storage", "notaurl"], None,
     "error: --storage 'notaurl' is not a database URL (expected sqlite:///PATH or postgresql://USER@HOST/DB)"),
    ("unknown-scheme", lambda t: ["--storage", "foo://bar"], None, "unknown database kind 'foo'"),
    ("unreachable-postgres", lambda t: ["--storage", UNREACHABLE], None,
     "error: cannot reach the PostgreSQL server at 127.0.0.1:1 (connection refused)"),
    ("sqlite-missing-folder", lambda t: ["--storage", f"sqlite:///{t / 'missing' / 'results.db'}"], None,
     "folder {t}/missing does not exist"),
    ("sqlite-overwritten", lambda t: ["--storage", f"sqlite:///{_corrupt(t)}"], None,
     "is not an SQLite database (corrupt or overwritten); move it away or pass --storage"),
    ("sqlite-truncated", lambda t: ["--storage", f"sqlite:///{_truncated(t)}"], None,
     "is empty (0 bytes: truncated?); move it away or pass --storage"),
    ("home-is-a-file", lambda t: [], _home_is_file, "is not a writable folder (it is a file)"),
]


@pytest.mark.parametrize("command", ["results", "leaderboard"])
@pytest.mark.parametrize(("args", "make_home", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_user_caused_storage_failure_is_one_line(tmp_path, command, args, make_home, message):
    home = make_home(tmp_path) if make_home else None
    extra = ["--out", str(tmp_path / "boards")] if command == "leaderboard" else []
    result = _cli(tmp_path, command, *args(tmp_path), *extra, home=home)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.replace("{t}", str(tmp_path)) in lines[0], result.stderr


@pytest.mark.parametrize(("args", "make_home", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
@pytest.mark.parametrize("how", ["--debug", "FERBENCH_DEBUG=1"])
def test_debug_shows_the_traceback(tmp_path, args, make_home, message, how):
    home = make_home(tmp_path) if make_home else None
    flags = ["--debug"] if how == "--debug" else []
    env = {"FERBENCH_DEBUG": "1"} if how != "--debug" else {}
    result = _cli(tmp_path, *flags, "results", *args(tmp_path), home=home, **env)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "datasets.errors.UserError" in result.stderr  # the one root (re-exported by benchmark.config.errors)
    assert message.replace("{t}", str(tmp_path)).removeprefix("error: ") in result.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root ignores file permissions, so a read-only FERBENCH_HOME is writable for it "
                    "(the home-is-a-file case covers the same error path)")
def test_read_only_home_is_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    try:
        result = _cli(tmp_path, "results", home=home)
    finally:
        home.chmod(0o755)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: FERBENCH_HOME={home} is not a writable folder (permission denied)"


def test_truncated_results_db_is_not_recreated(tmp_path):
    path = Path(_truncated(tmp_path))
    with pytest.raises(UserError, match="is empty"):
        open_storage(f"sqlite:///{path}")
    assert path.stat().st_size == 0


def test_a_fresh_sqlite_file_is_still_created(tmp_path):
    path = tmp_path / "new.db"
    open_storage(f"sqlite:///{path}")
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    open_storage(f"sqlite:///{path}")  # and opens again


@pytest.mark.parametrize("given", ["postgresql://user:pw@db.example:5433/bench", "postgres://user:pw@db.example:5433/bench"])
def test_plain_postgresql_url_uses_psycopg2(given):
    pytest.importorskip("psycopg2")
    url = normalize_storage_url(given)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.password, url.host, url.port, url.database) == ("user", "pw", "db.example", 5433, "bench")


def test_explicit_driver_is_kept():
    pytest.importorskip("psycopg2")
    assert normalize_storage_url("postgresql+psycopg2://u@h/d").drivername == "postgresql+psycopg2"
    assert normalize_storage_url("sqlite:///x.db").drivername == "sqlite"


def test_missing_postgresql_driver_names_the_cluster_extra(monkeypatch):
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg 3 is installed, so a plain postgresql:// URL has a driver")
    real_find_spec = storage.importlib.util.find_spec
    monkeypatch.setattr(storage.importlib.util, "find_spec",
                        lambda name, *rest: None if name == "psycopg2" else real_find_spec(name, *rest))
    with pytest.raises(UserError, match=r"'psycopg' is not installed; pip install -e \"\.\[cluster\]\""):
        normalize_storage_url("postgresql://u@h/d")


def test_plain_postgresql_url_opens_a_real_server(postgres_url, tmp_path):
    """`postgresql://` (the form people type) works with the cluster extra's psycopg2; a database that does
    not exist on a reachable server is one line too."""
    plain = postgres_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert plain.startswith("postgresql://")
    assert open_storage(plain).engine.url.drivername == "postgresql+psycopg2"
    missing = plain.rsplit("/", 1)[0] + "/no_such_database"
    result = _cli(tmp_path, "results", "--storage", missing)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the PostgreSQL server at "), result.stderr
    assert "no_such_database" in lines[0]

"""Test-wide settings: an isolated FERBENCH_HOME per test session (removed at the end), no progress bars."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile

import pytest

from benchmark.config.profiles import PROFILES, Profile

_SESSION_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    # One throw-away home for the whole session: synthetic caches and source models built by one test
    # are reused by the next, and nothing leaks into the user's real ~/.cache. Under pytest-xdist the
    # controller makes it and its workers (started later, with its environment) share it: every cache and
    # artifact build there is already safe for concurrent processes (file locks, atomic renames).
    global _SESSION_HOME
    worker = os.environ.get("PYTEST_XDIST_WORKER") is not None
    if "FERBENCH_TEST_KEEP_HOME" not in os.environ and not worker:
        _SESSION_HOME = tempfile.mkdtemp(prefix="ferbench-test-home-")
        os.environ["FERBENCH_HOME"] = _SESSION_HOME
    os.environ.pop("FERBENCH_DATA", None)
    os.environ.setdefault("FERBENCH_QUIET", "1")
    if worker:
        _share_the_cores(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def _share_the_cores(workers: int) -> None:
    """Give each xdist worker (and the CLI processes its tests start) its share of the cores. OpenMP threads spin
    while they wait, so two workers each running torch on every core are several times slower than one: on 2
    cores, one thread each. A thread count set by the caller (``OMP_NUM_THREADS``) is kept."""
    threads = str(max(1, (os.cpu_count() or 1) // max(workers, 1)))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, threads)
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_HOME is not None:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core, at least 2 (CI has 2 cores) and at most 4 (each worker's torch uses
    several threads; more workers only contend)."""
    return min(max(os.cpu_count() or 1, 2), 4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest modules first (stable otherwise): under ``--dist loadscope`` a worker takes a whole module, so
    the long end-to-end modules start at once and the quick ones fill in around them. A module's length is the sum
    of its ``slow`` tests' ``seconds`` (``@pytest.mark.slow(seconds=...)``, measured on 2 cores in the order they
    give, where the first module to need a shared cache pays for it: docs/PERFORMANCE.md, "The test suite"; 30 if
    unsaid)."""
    slow: dict[str, dict[str, float]] = {}
    for item in items:
        functions = slow.setdefault(item.module.__name__, {})
        marker = item.get_closest_marker("slow")
        if marker is not None:
            functions[getattr(item, "originalname", item.name)] = float(marker.kwargs.get("seconds", 30))
    items.sort(key=lambda item: -sum(slow[item.module.__name__].values()))


def tiny_variant(name: str = "tiny") -> Profile:
    """The built-in ``tiny`` profile (width 8, 32 px, one epoch of everything at batch 256), under ``name``."""
    return dataclasses.replace(PROFILES["tiny"], name=name)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> str:
    """``tiny_variant()`` registered as the profile ``tiny`` for one test; returns its name."""
    monkeypatch.setitem(PROFILES, "tiny", tiny_variant())
    return "tiny"


@pytest.fixture
def storage(tmp_path) -> str:
    """A fresh SQLite results storage URL in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server on loopback for the session (tests/postgres.py); its database's URL.

    Skips, saying why, when no server can be found or started here; with ``FERBENCH_REQUIRE_POSTGRES=1``
    (set by .ci/run when PostgreSQL is installed) that is a failure instead.
    """
    from tests.postgres import PostgresUnavailable, postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresUnavailable as error:
        if os.environ.get("FERBENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here (FERBENCH_REQUIRE_POSTGRES=1) but unavailable: {error}")
        pytest.skip(f"PostgreSQL tests skipped: {error}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)

"""Test-wide settings: an isolated FERBENCH_HOME per test session (removed at the end), no progress bars."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SESSION_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    # One throw-away home for the whole session: synthetic caches and source models built by one test
    # are reused by the next, and nothing leaks into the user's real ~/.cache.
    global _SESSION_HOME
    if "FERBENCH_TEST_KEEP_HOME" not in os.environ:
        _SESSION_HOME = tempfile.mkdtemp(prefix="ferbench-test-home-")
        os.environ["FERBENCH_HOME"] = _SESSION_HOME
    os.environ.pop("FERBENCH_DATA", None)
    os.environ.setdefault("FERBENCH_QUIET", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_HOME is not None:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)

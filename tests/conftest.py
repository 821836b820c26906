"""Test-wide settings: an isolated FERBENCH_HOME per test session, few CPU threads, fixed seeds."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # One throw-away home for the whole session: synthetic caches and source models built by one test
    # are reused by the next, and nothing leaks into the user's real ~/.cache.
    if "FERBENCH_TEST_KEEP_HOME" not in os.environ:
        os.environ["FERBENCH_HOME"] = tempfile.mkdtemp(prefix="ferbench-test-home-")
    os.environ.pop("FERBENCH_DATA", None)
    config.addinivalue_line("markers", "slow: end-to-end test (minutes on 2 CPU cores); run in CI too")

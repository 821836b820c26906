"""optuna-dashboard (the ``dashboard`` extra) reads the results storage as it is: one real run at the ``tiny``
profile, the dashboard's own server on a free loopback port, its page and its trial API fetched over HTTP, and
the run's training curve found among the trial's intermediate values."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from benchmark.orchestration.run import run_method

optuna_dashboard = pytest.importorskip("optuna_dashboard")

TIMEOUT = 60  # seconds per HTTP request (the first study request reads every trial)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (wsgiref's signature)
        pass


@pytest.fixture
def dashboard(tiny: str, storage: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A storage with one SHOT run (2 epochs), served by optuna-dashboard; yields (base URL, the run's record).
    The server is shut down and its socket closed afterwards, whatever the test did."""
    record = run_method("shot", "synth", seed=0, profile=tiny, overrides={"epochs": 2}, device="cpu",
                        storage_url=storage)
    server: WSGIServer = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def test_the_dashboard_shows_a_runs_training_curve(dashboard: tuple[str, dict[str, Any]]):
    base, record = dashboard
    status, kind, page = _get(f"{base}/dashboard")
    assert status == 200 and kind.startswith("text/html") and b"<html" in page.lower()
    _, _, body = _get(f"{base}/api/studies")
    studies = {s["study_name"]: s["study_id"] for s in json.loads(body)["study_summaries"]}
    assert record["trial"]["study"] == "run/shot/synth/tiny" and "run/shot/synth/tiny" in studies
    _, _, body = _get(f"{base}/api/studies/{studies['run/shot/synth/tiny']}")
    detail = json.loads(body)
    assert detail["has_intermediate_values"] is True
    (trial,) = detail["trials"]
    assert trial["number"] == record["trial"]["number"] and trial["state"].lower() == "complete"
    curve = [(point["step"], point["value"]) for point in trial["intermediate_values"]]
    assert curve == list(enumerate(record["curves"]["loss"]))
    attrs = {attr["key"]: attr["value"] for attr in trial["user_attrs"]}
    assert json.loads(attrs["curves"]) == record["curves"]  # every series, as a user attribute

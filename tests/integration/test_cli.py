"""The CLI contract: help, list, user errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_help_lists_commands():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("list", "data", "source", "calibrate", "run"):
        assert command in result.stdout


def test_list_json_has_every_section(capsys):
    assert main(["list", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"methods", "setups", "datasets", "backbones", "profiles"} <= set(payload)
    assert all("clup_backbone" not in profile for profile in payload["profiles"])  # a profile names no method
    settings = {m["name"]: m["setting"] for m in payload["methods"]}
    assert settings["source_only"] == "source" and settings["oracle"] == "oracle" and settings["clup"] == "sfda"
    assert {"rafdb", "fer2013", "expw", "afe", "synth-lab", "synth-wild", "synth-lab-negative"} <= set(payload["datasets"])
    assert {s["name"] for s in payload["setups"]} >= {"synth", "synth_negative", "raf_fer2013", "afe_expw", "raf_expw",
                                                  "afe_fer2013"}


def test_list_fits_80_columns_and_names_no_method_default(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert lines[0] == "methods:" and "profiles:" in lines and "CluP backbone" not in out


def test_one_error_root_caught_once():
    from benchmark.config.errors import CheckpointError, UserError
    from datasets import errors

    assert UserError is errors.UserError and issubclass(errors.DatasetError, UserError)
    assert issubclass(CheckpointError, UserError)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--method", "nope", "--setup", "synth"], "unknown method 'nope'; known: "),
        (["run", "--method", "source_only", "--setup", "mars"], "unknown setup 'mars'; known: "),
        (["run", "--method", "source_only", "--setup", "synth", "--set", "lr=1"], "unknown hyperparameter"),
        (["run", "--method", "source_only", "--setup", "synth", "--set", "lr"], "--set expects KEY=VALUE"),
        (["run", "--method", "source_only", "--setup", "synth", "--profile", "huge"], "unknown profile 'huge'"),
        (["data", "verify", "nope"], "unknown dataset 'nope'"),
        (["data", "verify", "rafdb"], "no complete prepared cache"),
        (["data", "prepare", "rafdb", "--raw", "/nonexistent/raf"], "/nonexistent/raf"),
    ],
)
def test_user_errors_exit_nonzero_without_traceback(args, message, capsys, monkeypatch):
    """In this process (``main`` is where every user error is caught; a real process's exit status and stderr are
    tests/integration/test_error_path.py's): exit status 2, one ``error:`` line, no traceback."""
    monkeypatch.delenv("FERBENCH_DEBUG", raising=False)
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_debug_reraises_user_errors(capsys, monkeypatch):
    from benchmark.config.errors import UserError

    monkeypatch.delenv("FERBENCH_DEBUG", raising=False)
    assert main(["results", "--storage", "notaurl"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --storage 'notaurl' is not a database URL (expected sqlite:///PATH or postgresql://USER@HOST/DB)")
    with pytest.raises(UserError, match="is not a database URL"):
        main(["--debug", "results", "--storage", "notaurl"])
    monkeypatch.setenv("FERBENCH_DEBUG", "1")
    with pytest.raises(UserError, match="is not a database URL"):
        main(["results", "--storage", "notaurl"])
    monkeypatch.setenv("FERBENCH_DEBUG", "0")
    assert main(["results", "--storage", "notaurl"]) == 2


def test_leaderboard_writes_the_results_page_with_the_default_out_only(tmp_path, monkeypatch, capsys):
    storage = f"sqlite:///{tmp_path / 'results.db'}"
    assert main(["results", "import", str(ROOT / "leaderboards/records/table3.jsonl"), "--storage", storage]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["leaderboard", "--storage", storage, "--experiments", "table3"]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote leaderboards/table3.md", "wrote docs/RESULTS.md"]
    assert "Table 3" in (tmp_path / "docs/RESULTS.md").read_text(encoding="utf-8")
    assert main(["leaderboard", "--storage", storage, "--experiments", "table3", "--out", "boards"]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote boards/table3.md"]
    assert main(["leaderboard", "--storage", storage, "--experiments", "table3", "--out", "boards",
                 "--results-page", "page.md"]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote boards/table3.md", "wrote page.md"]

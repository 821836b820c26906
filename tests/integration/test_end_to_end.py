"""End to end on the synthetic default, through the CLI exactly as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasets.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parents[2]
RECORD_FIELDS = {
    "method", "setup", "profile", "seed", "hparams", "accuracy", "mean_class_accuracy", "class_accuracy",
    "confusion", "n_test", "validators", "pseudo_labels", "artifacts", "seconds", "versions", "data",
}


def _cli(*args: str, timeout: float, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1", **env_overrides}
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout
    )


@pytest.mark.slow(seconds=170)
def test_source_only_on_synth_from_cold_cache():
    start = time.perf_counter()
    result = _cli("run", "--method", "source_only", "--setup", "synth", "--json", timeout=900)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert RECORD_FIELDS <= set(record)
    assert record["method"] == "source_only" and record["setup"] == "synth" and record["profile"] == "quick10"
    assert list(record["class_accuracy"]) == list(CLASS_NAMES)
    assert len(record["confusion"]) == 7 and sum(map(sum, record["confusion"])) == record["n_test"]
    assert 0.0 <= record["accuracy"] <= 100.0
    print(f"cold-cache source_only run: {seconds:.1f} s, accuracy {record['accuracy']:.2f}")


@pytest.mark.slow(seconds=75)
def test_readme_main_command_clup_on_synth():
    # Runs after the cold source_only run in the same session home: the source model is reused.
    result = _cli("run", "--method", "clup", "--setup", "synth", "--json", timeout=900)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert RECORD_FIELDS <= set(record)
    assert record["method"] == "clup" and record["hparams"]["clusters"] == 100 and record["hparams"]["q"] == 0.8
    labels = record["pseudo_labels"]
    assert labels["kept"] > 0 and 0.0 < labels["kept_fraction"] <= 1.0
    assert 0.0 <= labels["accuracy_vs_truth"] <= 100.0
    assert set(record["validators"]) == {"entropy", "im", "snd"}
    print(f"clup run (source model cached): {record['seconds']}, accuracy {record['accuracy']:.2f}")

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


@pytest.mark.slow
def test_source_only_on_synth_from_cold_cache():
    start = time.perf_counter()
    result = _cli("run", "--method", "source_only", "--setup", "synth", "--json", timeout=900)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert RECORD_FIELDS <= set(record)
    assert record["method"] == "source_only" and record["setup"] == "synth" and record["profile"] == "quick"
    assert list(record["class_accuracy"]) == list(CLASS_NAMES)
    assert len(record["confusion"]) == 7 and sum(map(sum, record["confusion"])) == record["n_test"]
    assert 0.0 <= record["accuracy"] <= 100.0
    print(f"cold-cache source_only run: {seconds:.1f} s, accuracy {record['accuracy']:.2f}")


@pytest.mark.slow
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


#: How far a native seed-0 calibration number may sit on the wrong side of its target here. Native digits move
#: with the CPU family and the thread count (docs/NUMERICS.md), and synth-4 sits close to two targets at seed 0
#: (docs/LAB_NOTES.md, "synth-4: the portable generator": portable 90.92 / 65.58 / 84.67, native on an Intel Xeon
#: 90.17 / 64.42 / 84.42), so the exact check is the portable calibration's digits in the docs; this test checks the
#: regime (a source model that learns synth-lab, a large shift, a learnable target) on any CPU.
CALIBRATION_TOLERANCE = 3.0


@pytest.mark.slow
def test_calibrate_reports_the_three_numbers_against_their_targets():
    """The three calibration numbers in the session's home (after the runs above, the synth-lab source model is
    cached; the synth-wild one is trained here): ``passed`` says whether each meets its target exactly; each must
    be within ``CALIBRATION_TOLERANCE`` of it on any CPU and thread count."""
    result = _cli("calibrate", "--setup", "synth", "--json", timeout=1800)
    assert result.returncode == 0, result.stderr
    calibration = json.loads(result.stdout)
    numbers = calibration["accuracy"]
    print(numbers)
    assert set(numbers) == {"source_on_source", "source_on_target", "target_on_target"}
    assert all(0.0 <= v <= 100.0 for v in numbers.values())
    assert calibration["passed"] == {
        "source_on_source": numbers["source_on_source"] >= 90.0,
        "source_on_target": numbers["source_on_target"] <= 70.0,
        "target_on_target": numbers["target_on_target"] >= 85.0,
    }
    assert numbers["source_on_source"] >= 90.0 - CALIBRATION_TOLERANCE
    assert numbers["source_on_target"] <= 70.0 + CALIBRATION_TOLERANCE
    assert numbers["target_on_target"] >= 85.0 - CALIBRATION_TOLERANCE

"""The synthetic benchmark's calibration through the CLI (``python -m benchmark calibrate``), in a module of its own
so that it runs beside ``test_end_to_end.py`` on another test worker."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_end_to_end import _cli

#: How far a native seed-0 calibration number may sit on the wrong side of its target here. Native digits move
#: with the CPU family and the thread count (docs/NUMERICS.md), and synth-4 sits close to its targets at seed 0
#: (docs/DATA.md, "Calibration": portable 94.17 / 70.67 / 86.08 at `quick10`, 90.92 / 65.58 / 84.67 at `quick`),
#: so the exact check is the portable calibration's digits in the docs; this test checks the regime (a source
#: model that learns synth-lab, a large shift, a learnable target) on any CPU.
CALIBRATION_TOLERANCE = 3.0


@pytest.mark.slow(seconds=190)
def test_calibrate_reports_the_three_numbers_against_their_targets():
    """The three calibration numbers in the session's home (the synth-lab source model is shared with the runs of
    ``test_end_to_end.py``, whichever builds it first; the synth-wild one is trained here): ``passed`` says whether
    each meets its target exactly; each must be within ``CALIBRATION_TOLERANCE`` of it on any CPU and thread
    count."""
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

"""The portable numerics mode (docs/NUMERICS.md): its caps, its place in job identity, its refusal outside a
portable process, and its digits: the reference run's accuracy and prediction digest are constants that any
x86-64 CPU with AVX2 reproduces, whatever lower caps are added from outside."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.config import numerics
from benchmark.config.profiles import get_profile
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.store.identity import job_recipe
from datasets import registry
from tests.portable_constants import portable_reference

#: ``python tests/portable_constants.py`` prints both. Measured on an Intel Xeon with AVX-512 on the synth-4 data
#: whose hashes docs/DATA.md pins (synth-lab train ef43d8b3..., synth-wild test b9a8faa4...).
PORTABLE_REFERENCE_ACCURACY = 30.5
PORTABLE_REFERENCE_PREDICTIONS_SHA256 = "4d8af43b99027a37285dbafaea5a618d50f37371093cb536a53f29a855fc088b"
#: Caps below the portable ones (numpy at its x86-64-v2 baseline, OpenBLAS's Sandy Bridge kernels, libjpeg-turbo
#: without SIMD): the digits must not move.
LOWER_CAPS = {"NPY_DISABLE_CPU_FEATURES": "X86_V3", "OPENBLAS_CORETYPE": "Sandybridge", "JSIMD_FORCENONE": "1"}


def test_argv_numerics_reads_both_spellings_and_stops_at_double_dash():
    assert numerics.argv_numerics(["run", "--numerics", "portable"]) == "portable"
    assert numerics.argv_numerics(["run", "--numerics=portable"]) == "portable"
    assert numerics.argv_numerics(["run", "--", "--numerics", "portable"]) == "native"
    assert numerics.argv_numerics(["run"]) == "native"


def test_the_portable_environment_caps_every_library_and_keeps_lower_caps():
    env = numerics.portable_environment({"OMP_NUM_THREADS": "8", "NPY_DISABLE_CPU_FEATURES": "X86_V3"})
    assert numerics.environment_is_portable(env)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "COMPATIBLE" and env["MKL_DYNAMIC"] == "FALSE"
    disabled = env["NPY_DISABLE_CPU_FEATURES"].split()
    assert disabled[0] == "X86_V3" and set(numerics.numpy_above_avx2()) <= set(disabled)
    assert numerics.portable_environment({"OPENBLAS_CORETYPE": "SkylakeX"})["OPENBLAS_CORETYPE"] == "Haswell"
    assert numerics.portable_environment({"OPENBLAS_CORETYPE": "Sandybridge"})["OPENBLAS_CORETYPE"] == "Sandybridge"
    assert not numerics.environment_is_portable({**env, "MKL_CBWR": "AUTO"})


def test_native_keys_are_unchanged_and_portable_ones_differ():
    quick = get_profile("quick")
    assert "numerics" not in quick.as_record() and "numerics" not in quick.numerics_fields()
    portable = resolve_profile("quick", {"numerics": "portable"})
    assert portable.as_record()["numerics"] == "portable" and portable.numerics_fields()["numerics"] == "portable"
    assert job_recipe("source_only", portable, {}) != job_recipe("source_only", quick, {})
    native = resolve_profile("quick", {"numerics": "native"})
    assert job_recipe("source_only", native, {}) == job_recipe("source_only", quick, {})


def test_the_flag_gives_a_sweep_its_own_jobs(capsys, storage):
    def keys(*extra: str) -> set[str]:
        assert main(["sweep", "--experiment", "table4", "--setups", "synth", "--seeds", "1", "--plan", "--json",
                     "--storage", storage, *extra]) == 0
        return {job["key"] for job in json.loads(capsys.readouterr().out)["jobs"]}

    native = keys()
    assert keys("--numerics", "native") == native and not keys("--numerics", "portable") & native


@pytest.mark.skipif(numerics.environment_is_portable(), reason="this test process was started in portable mode")
def test_a_portable_job_in_a_native_process_refuses_in_one_line(capsys, storage):
    assert main(["run", "--method", "source_only", "--setup", "synth", "--profile", "tiny", "--numerics", "portable",
                 "--storage", storage]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: numerics portable:") and "--numerics portable" in error and "\n" not in error


def _shared_data_home(tmp_path: Path) -> Path:
    """A FERBENCH_HOME of the test's own whose data caches are the session's (built once; the data's bytes do
    not depend on the numerics mode: docs/DATA.md), so only the portable run itself is timed here."""
    for name in ("synth-lab", "synth-wild"):
        registry.ensure(name)
    home = tmp_path / "home"
    home.mkdir()
    (home / "cache").symlink_to(registry.home() / "cache", target_is_directory=True)
    return home


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64", reason="portable mode is x86-64")
def test_portable_reference_run_gives_the_pinned_digits_under_lower_caps_too(tmp_path: Path):
    accuracy, digest, record = portable_reference(_shared_data_home(tmp_path))
    assert record["machine"]["numerics"] == "portable" and record["threads"] == 1
    assert record["machine"]["isa"]["torch"] == "AVX2" and record["profile_values"]["numerics"] == "portable"
    assert (accuracy, digest) == (PORTABLE_REFERENCE_ACCURACY, PORTABLE_REFERENCE_PREDICTIONS_SHA256), (
        f"portable digits moved on {record['machine']['label']} (data {record['data']}); if the synthetic data's "
        "generator changed, `python tests/portable_constants.py` prints the new constants")
    (tmp_path / "lower").mkdir()
    lower = portable_reference(_shared_data_home(tmp_path / "lower"), LOWER_CAPS)
    assert lower[2]["machine"]["isa"]["numpy"] == "baseline"
    assert lower[:2] == (accuracy, digest)

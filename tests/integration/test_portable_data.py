"""The same data bytes under every CPU dispatch setting this machine can run (docs/DATA.md, "Portability").

Each setting runs in a fresh process, because numpy, OpenBLAS and libjpeg-turbo read their dispatch variables
once, at load time:

- numpy's ``NPY_DISABLE_CPU_FEATURES``, capping its dispatch at each group below the machine's best (the groups
  numpy itself lists in ``__cpu_dispatch__``; on an AVX-512 machine this reaches the AVX2 level of other CPUs);
- OpenBLAS's ``OPENBLAS_CORETYPE`` (Prescott, Sandybridge, Haswell kernels);
- 1 and 2 threads (OpenMP and OpenBLAS);
- for the real-format path, libjpeg-turbo's ``JSIMD_FORCENONE`` / ``JSIMD_FORCESSE2`` / ``JSIMD_FORCEAVX2``.

Passing here is necessary, not sufficient, for other CPUs: the generator's arithmetic (``datasets/synth/portable.py``)
is what makes the bytes a function of the inputs alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchmark.config.machine import numpy_cpu
from tests import raw_fixtures as rf
from tests.synth_pins import PINNED_CHUNKS

REPO = Path(__file__).resolve().parents[2]
PINS_SCRIPT = REPO / "tests" / "synth_pins.py"

#: Every library variable a setting may set; a child starts without any of them, then gets its setting's.
_DISPATCH_VARIABLES = ("NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                       "MKL_NUM_THREADS", "JSIMD_FORCENONE", "JSIMD_FORCESSE2", "JSIMD_FORCEAVX2")


def _numpy_caps() -> list[str]:
    """``NPY_DISABLE_CPU_FEATURES`` values that cap numpy's dispatch at each level this CPU has below its best.

    numpy only honours the names in ``__cpu_dispatch__`` (any other is ignored with a hidden warning), so the caps
    are built from that list, highest group first: disabling the top k groups caps the dispatch below them.
    """
    groups = _dispatched_groups()
    return [" ".join(groups[level:]) for level in range(len(groups) - 1, -1, -1)]


def _dispatched_groups() -> list[str]:
    """numpy's dispatch groups that this CPU runs, lowest first (``benchmark.config.machine.numpy_cpu``)."""
    targets, features = numpy_cpu()
    return [group for group in targets if features.get(group)]


def _threads(n: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(n), "OPENBLAS_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


def synth_settings() -> dict[str, dict[str, str]]:
    """Named dispatch settings for the synthetic renderer."""
    settings: dict[str, dict[str, str]] = {"native": {}}
    for index, cap in enumerate(_numpy_caps()):
        settings[f"numpy-without-{cap.replace(' ', '+')}"] = {"NPY_DISABLE_CPU_FEATURES": cap, **_threads(1 + index % 2)}
    for index, core in enumerate(("Prescott", "Sandybridge", "Haswell")):
        settings[f"openblas-{core}"] = {"OPENBLAS_CORETYPE": core, **_threads(2 - index % 2)}
    return settings


def _child_env(setting: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DISPATCH_VARIABLES}
    return {**env, **setting, "PYTHONPATH": str(REPO)}


def _run_json(args: list[str], setting: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, *args], env=_child_env(setting), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_settings_reach_below_this_cpu() -> None:
    """The numpy caps include the baseline-only one: at least one cap turns every dispatched group off."""
    caps = _numpy_caps()
    assert caps, "numpy lists no dispatch group this CPU runs"
    assert set(caps[-1].split()) == set(_dispatched_groups())


def test_a_numpy_cap_takes_effect_in_the_child() -> None:
    """The baseline cap really turns numpy's dispatched groups off in a child (a cap numpy ignored would make the
    settings below all the same process)."""
    cap = _numpy_caps()[-1]
    code = ("import json; from numpy._core import _multiarray_umath as m; "
            "print(json.dumps(sorted(g for g in m.__cpu_dispatch__ if m.__cpu_features__.get(g))))")
    assert _run_json(["-c", code], {"NPY_DISABLE_CPU_FEATURES": cap}) == []


@pytest.mark.slow
def test_synthetic_chunks_are_the_pinned_bytes_under_every_dispatch_setting() -> None:
    """Chunk 0 of every split of both domains (labels, identities, pixels) is the pinned one in every setting."""
    settings = synth_settings()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(settings, pool.map(lambda s: _run_json([str(PINS_SCRIPT)], s), settings.values())))
    pinned = {"/".join(key): list(value) for key, value in PINNED_CHUNKS.items()}
    differing = {name: sorted(k for k in pinned if digests.get(k) != pinned[k]) for name, digests in results.items()}
    assert not any(differing.values()), f"splits that differ from the pins, per setting: {differing}"


#: Prepare every real-format fixture tree given on argv (name=root pairs) and print its images' and labels' SHA-256.
_PREPARE = """
import json, sys, tempfile
from pathlib import Path
from datasets.prepare import prepare_raw
from datasets.registry import raw_datasets
out = {}
for pair in sys.argv[1:]:
    name, root = pair.split("=", 1)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = prepare_raw(raw_datasets()[name](), Path(root), Path(tmp) / name)
    out[name] = {split: [info["images_sha256"], info["labels_sha256"]] for split, info in manifest["splits"].items()}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_real_format_preparation_is_the_same_under_every_dispatch_setting(tmp_path: Path) -> None:
    """Decoding (PNG, libjpeg-turbo's JPEG, FER2013's CSV) and resizing (Pillow's fixed-point filters) give the same
    cache bytes whatever SIMD level numpy and libjpeg-turbo use."""
    trees = {"rafdb": rf.make_rafdb, "fer2013": rf.make_fer2013, "expw": rf.make_expw, "afe": rf.make_afe}
    for name, make in trees.items():
        make(tmp_path / name)
    args = ["-c", _PREPARE, *(f"{name}={tmp_path / name}" for name in trees)]
    settings = {"native": {}, "jpeg-no-simd": {"JSIMD_FORCENONE": "1"}, "jpeg-sse2": {"JSIMD_FORCESSE2": "1"},
                "jpeg-avx2": {"JSIMD_FORCEAVX2": "1"},
                "numpy-baseline": {"NPY_DISABLE_CPU_FEATURES": _numpy_caps()[-1], **_threads(2)}}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(settings, pool.map(lambda s: _run_json(args, s), settings.values())))
    assert set(results["native"]) == set(trees)
    assert all(result == results["native"] for result in results.values()), results

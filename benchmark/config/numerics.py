"""Numerics modes (docs/NUMERICS.md): ``native`` (each library picks its fastest kernels for this CPU) or
``portable`` (every library capped to AVX2, or put in its conditional-reproducibility mode, at one thread).

The caps are environment variables that the libraries read once, when they load, so they must be set before
``torch``, ``numpy`` or ``faiss`` is imported: ``reexec_if_portable`` (called first thing by the command line)
sets them and re-executes the command when ``--numerics portable`` is on it, and child processes (a sweep's
workers) inherit them. ``ensure_numerics`` checks, inside the process that runs a job, that they took effect and
turns off what only a runtime switch turns off (oneDNN and NNPACK convolutions); a job whose profile says
``portable`` in a process that is not refuses with one line naming the flag.

This module (and ``benchmark.config.machine``) imports only the standard library at its top: the command line
imports it before anything heavy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from benchmark.config.errors import UserError
from benchmark.config.machine import blas_libraries, faiss_level, numpy_cpu

NUMERICS = ("native", "portable")
#: The environment variable marking a process (and its children) as started in portable mode.
MARKER = "FERBENCH_NUMERICS"
#: The one thread count of the portable mode (the thread count changes reductions, hence results).
PORTABLE_THREADS = 1

#: Each cap, and why (docs/NUMERICS.md has the sources).
PORTABLE_ENV: dict[str, str] = {
    MARKER: "portable",
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels (ATen): the AVX2 build, not AVX-512
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (off for convolutions anyway, see ensure_numerics) capped to AVX2
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same, under oneDNN's older name
    "MKL_CBWR": "COMPATIBLE",  # MKL's conditional numerical reproducibility: the one branch pinned on every vendor
    "MKL_DYNAMIC": "FALSE",  # MKL may not change its thread count behind our back
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (numpy's, faiss's) uses its Haswell (AVX2) kernels
    "FAISS_OPT_LEVEL": "avx2",  # faiss wheels with one module per ISA load the AVX2 one
    "FAISS_SIMD_LEVEL": "AVX2",  # faiss >= 1.13 wheels with dynamic dispatch run the AVX2 level
    "OMP_NUM_THREADS": str(PORTABLE_THREADS),
    "MKL_NUM_THREADS": str(PORTABLE_THREADS),
    "OPENBLAS_NUM_THREADS": str(PORTABLE_THREADS),
}
#: numpy's dispatch targets above AVX2 start with these (numpy 2.4: X86_V4, AVX512_ICL, AVX512_SPR; older
#: releases: AVX512F, AVX512_SKX ...); ``NPY_DISABLE_CPU_FEATURES`` turns off those the installed numpy has.
_ABOVE_AVX2 = ("AVX512", "X86_V4")
#: OpenBLAS core types at or below Haswell: one set from outside is kept (a lower cap; tests/integration/
#: test_numerics.py checks that the digits do not move with it), any other becomes Haswell.
OPENBLAS_AT_MOST_AVX2 = ("Haswell", "Sandybridge", "Nehalem", "Penryn", "Dunnington", "Core2", "Prescott")
#: The commands that run jobs (and so take ``--numerics``).
COMPUTE_COMMANDS = ("run", "sweep", "source", "pretrain", "probe", "calibrate")


def numpy_above_avx2() -> list[str]:
    """The installed numpy's dispatch targets above AVX2 (imports numpy)."""
    return [name for name in numpy_cpu()[0] if name.startswith(_ABOVE_AVX2)]


def portable_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every portable cap set (numpy's disabled targets added to any the caller disabled)."""
    env = {**base, **PORTABLE_ENV}
    if _lower_core(base.get("OPENBLAS_CORETYPE")):
        env["OPENBLAS_CORETYPE"] = base["OPENBLAS_CORETYPE"]
    disabled = [*base.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split(), *numpy_above_avx2()]
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(dict.fromkeys(disabled))
    return env


def argv_numerics(args: Sequence[str]) -> str:
    """The ``--numerics`` value on a command line (``native`` when absent), read before argparse runs."""
    value = "native"
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--numerics" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--numerics="):
            value = arg.partition("=")[2]
    return value


def _lower_core(core: str | None) -> bool:
    """Whether ``core`` is an OpenBLAS core type at or below Haswell."""
    return (core or "").lower() in {name.lower() for name in OPENBLAS_AT_MOST_AVX2}


def _missing_caps(env: Mapping[str, str]) -> list[str]:
    """The names of the portable caps ``env`` lacks (or sets otherwise)."""
    return [name for name, value in PORTABLE_ENV.items()
            if env.get(name) != value and not (name == "OPENBLAS_CORETYPE" and _lower_core(env.get(name)))]


def environment_is_portable(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``env`` holds every portable cap."""
    return not _missing_caps(env)


def reexec_if_portable(args: Sequence[str]) -> None:
    """Re-execute ``python -m benchmark ARGS`` with the portable caps when ARGS run jobs (``COMPUTE_COMMANDS``)
    with ``--numerics portable`` and this process was not started with them; return otherwise (the re-executed
    process returns here). A report command's ``--numerics`` only selects records: no caps needed."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command not in COMPUTE_COMMANDS or argv_numerics(args) != "portable" or environment_is_portable():
        return
    os.execve(sys.executable, [sys.executable, "-m", "benchmark", *args], portable_environment(os.environ))


def process_numerics() -> str:
    """``portable`` when this process was started with the portable caps, else ``native``."""
    return "portable" if environment_is_portable() else "native"


def _portable_problems() -> list[str]:
    """What keeps this process from portable numerics (empty: nothing); changes nothing."""
    import torch

    missing = _missing_caps(os.environ)
    problems = [f"caps not set: {', '.join(missing)}"] if missing else []
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        problems.append(f"torch runs {capability}, not AVX2 (portable mode needs an x86-64 CPU with AVX2)")
    features = numpy_cpu()[1]  # numpy is loaded now, so threadpoolctl sees its OpenBLAS below
    active = [name for name in numpy_above_avx2() if features.get(name)]
    if active:
        problems.append(f"numpy dispatches {', '.join(active)}")
    cores = {str(blas["core"]) for blas in blas_libraries() if blas["library"] == "openblas"}
    if any(not _lower_core(core) for core in cores):
        problems.append(f"OpenBLAS runs {', '.join(sorted(cores))}")
    level = faiss_level()
    if level not in (None, "AVX2", "NONE"):
        problems.append(f"faiss runs {level}")
    return problems


def _switch_to_portable() -> None:
    """What only a runtime switch sets: oneDNN and NNPACK convolutions off (their blocking follows the detected
    cache sizes), one torch thread and one faiss thread."""
    import faiss
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    torch.set_num_threads(PORTABLE_THREADS)
    faiss.omp_set_num_threads(PORTABLE_THREADS)


_checked = False


def ensure_numerics(numerics: str) -> None:
    """Before a job of ``numerics`` runs: nothing for ``native``; for ``portable``, check that this process runs
    portable numerics (a UserError naming the flag otherwise) and switch off oneDNN/NNPACK convolutions."""
    global _checked
    if numerics not in NUMERICS:
        raise UserError(f"unknown numerics mode {numerics!r}; use {' or '.join(NUMERICS)}")
    if numerics == "native" or _checked:
        return
    problems = _portable_problems()
    if problems:
        raise UserError("numerics portable: this process did not start in portable mode (" + "; ".join(problems)
                        + "); pass --numerics portable on the command line, which sets the caps before the "
                        "libraries load")
    _switch_to_portable()
    _checked = True

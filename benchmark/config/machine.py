"""Where a record was made: the machine fingerprint stored in every run and probe record (``machine``; docs/PROTOCOL.md,
"The run record") and its short label, shown by ``results show`` and the leaderboards.

The fingerprint names the CPU (vendor, model), the instruction set each library runs on it (torch's ATen
capability, oneDNN's cap, MKL's reproducibility branch, each BLAS's core type, numpy's dispatch level, faiss's
SIMD level), the thread count, the device, the library versions and the numerics mode (docs/NUMERICS.md).
Libraries are imported inside the functions: the command line imports this package before torch is imported.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from benchmark.config.hashing import json_digest

#: The label of a record made before records carried a fingerprint (all such records count as one machine).
UNKNOWN = "unknown"


#: x86 vector extensions, widest first, as /proc/cpuinfo names them and as a label shows them.
_X86_LEVELS = (("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4.2"))


@lru_cache(maxsize=1)
def cpu_identity() -> dict[str, str]:
    """``{"vendor", "model", "vector"}`` (vector: the widest x86 vector extension the CPU has) from /proc/cpuinfo
    on Linux, else from ``platform`` (vector ``unknown``)."""
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, sep, value = line.partition(":")
                name = {"vendor_id": "vendor", "model name": "model", "flags": "flags"}.get(key.strip())
                if sep and name and name not in found:
                    found[name] = " ".join(value.split())
                if len(found) == 3:
                    break
    except OSError:
        pass
    flags = set(found.get("flags", "").split())
    return {"vendor": found.get("vendor") or platform.machine() or UNKNOWN,
            "model": found.get("model") or platform.processor() or platform.machine() or UNKNOWN,
            "vector": next((shown for flag, shown in _X86_LEVELS if flag in flags), UNKNOWN)}


def numpy_cpu() -> tuple[list[str], dict[str, bool]]:
    """numpy's dispatch targets (compiled in) and the CPU features it uses (``NPY_DISABLE_CPU_FEATURES`` applied)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as umath
    return list(umath.__cpu_dispatch__), dict(umath.__cpu_features__)


def numpy_level() -> str:
    """The highest dispatch target numpy runs here (``baseline`` when none)."""
    dispatch, features = numpy_cpu()
    active = [name for name in dispatch if features.get(name)]
    return active[-1] if active else "baseline"


def blas_libraries() -> list[dict[str, Any]]:
    """Each BLAS loaded in this process (threadpoolctl; empty without it): library, core type, version, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{"library": info.get("internal_api"), "core": info.get("architecture"), "version": info.get("version"),
             "threads": info.get("num_threads"), "file": os.path.basename(info.get("filepath") or "")}
            for info in threadpool_info() if info.get("user_api") == "blas"]


def faiss_level() -> str | None:
    """faiss's SIMD level: the one it dispatches (faiss >= 1.13) or that of the module it loaded (one module per
    ISA); None without faiss."""
    try:
        import faiss
    except ImportError:
        return None
    config = getattr(faiss, "SIMDConfig", None)
    if config is not None:
        return str(config.get_level_name())
    for level in ("AVX512_SPR", "AVX512", "AVX2", "SVE"):
        if hasattr(faiss, f"swigfaiss_{level.lower()}"):
            return level
    return "NONE"


def _probe(read: Callable[[], Any]) -> Any:
    """``read()``, or ``error: <what>`` when a library's private or changed API fails: a record is never lost to
    its fingerprint."""
    try:
        return read()
    except Exception as error:  # noqa: BLE001  (any library failure, reported in the record)
        return f"error: {type(error).__name__}"


def library_isa() -> dict[str, Any]:
    """The instruction set (or reproducibility branch) each numerical library runs here."""
    import torch

    return {
        "torch": _probe(torch.backends.cpu.get_cpu_capability),
        "onednn": {"max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "auto",
                   "enabled": bool(torch.backends.mkldnn.enabled)},
        "nnpack": _probe(lambda: bool(torch._C._get_nnpack_enabled())),
        "mkl": {"available": torch.backends.mkl.is_available(), "cbwr": os.environ.get("MKL_CBWR", "AUTO")},
        "blas": _probe(blas_libraries),
        "numpy": _probe(numpy_level),
        "faiss": _probe(faiss_level),
    }


def library_versions() -> dict[str, str | None]:
    """Python and the numerical libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "numpy": of("numpy"), "torch": of("torch"),
            "faiss": of("faiss-cpu") or of("faiss-gpu") or of("faiss"), "scikit-learn": of("scikit-learn")}


def machine_label(cpu: dict[str, str]) -> str:
    """The short display name of a machine: ``AMD EPYC 7B13 (avx2)`` (the CPU's widest vector extension, whatever
    the libraries were capped to)."""
    return f"{cpu['model']} ({cpu['vector']})"


def fingerprint(device: Any, numerics: str) -> dict[str, Any]:
    """The machine fingerprint of a record made in this process on ``device`` in mode ``numerics``; ``label``
    and ``id`` (8 hex digits of the CPU's vendor, model and vector extension) name the machine."""
    import torch

    cpu = cpu_identity()
    return {
        "label": machine_label(cpu),
        "id": json_digest(cpu)[:8],
        "cpu": cpu,
        "platform": f"{platform.system()} {platform.machine()}",
        "isa": library_isa(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "numerics": numerics,
        "versions": library_versions(),
    }


def record_machine(record: dict[str, Any]) -> str:
    """The machine label of a stored record (``unknown`` for a record made before records carried one)."""
    machine = record.get("machine")
    return str(machine.get("label", UNKNOWN)) if isinstance(machine, dict) else UNKNOWN

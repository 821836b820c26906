"""The machine fingerprint (benchmark/config/machine.py): what every record says about where it was made."""

from __future__ import annotations

import json

from benchmark.config.machine import UNKNOWN, cpu_identity, fingerprint, machine_label, record_machine


def test_the_fingerprint_names_cpu_libraries_threads_device_and_mode():
    machine = fingerprint("cpu", "native")
    assert json.loads(json.dumps(machine)) == machine  # plain JSON, as records are stored
    assert machine["label"] == machine_label(machine["cpu"]) and len(machine["id"]) == 8
    assert {"vendor", "model", "vector"} <= set(machine["cpu"])
    assert {"torch", "onednn", "nnpack", "mkl", "blas", "numpy", "faiss"} <= set(machine["isa"])
    assert machine["threads"] >= 1 and machine["device"] == "cpu" and machine["numerics"] == "native"
    assert {"python", "numpy", "torch", "faiss"} <= set(machine["versions"])
    assert fingerprint("cpu", "portable")["id"] == machine["id"]  # the machine, whatever the mode


def test_the_label_is_the_cpu_model_and_its_widest_vector_extension():
    epyc = {"vendor": "AuthenticAMD", "model": "AMD EPYC 7B13", "vector": "avx2"}
    assert machine_label(epyc) == "AMD EPYC 7B13 (avx2)"
    assert cpu_identity()["model"] in fingerprint("cpu", "native")["label"]


def test_records_without_a_fingerprint_are_one_unknown_machine():
    assert record_machine({"accuracy": 50.0}) == UNKNOWN == "unknown"
    assert record_machine({"machine": {"label": "AMD EPYC 7B13 (avx2)"}}) == "AMD EPYC 7B13 (avx2)"

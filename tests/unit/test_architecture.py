"""The one-way layers of docs/ARCHITECTURE.md hold, and the contract that enforces them can fail.

``lint-imports`` (import-linter, contracts in pyproject.toml) checks that no module imports a layer above its
own; this module also checks that no two of our modules import each other, directly or in a ring.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("benchmark", "methods", "datasets")


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(lint), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_layer_contracts_hold():
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "bad_import"), [
    ("methods/core/data.py", "import benchmark.orchestration.run"),   # the engine reaching up to orchestration
    ("datasets/cache.py", "import methods.core.models"),             # the data layer importing the engine
])
def test_a_wrong_import_breaks_the_contract(tmp_path: Path, module: str, bad_import: str):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_two_modules_import_each_other():
    graph = grimp.build_graph(*PACKAGES)
    # A package's __init__ importing its own submodules is how packages re-export; only module rings count.
    for package in list(graph.modules):
        for child in graph.find_children(package):
            if graph.direct_import_exists(importer=package, imported=child):
                graph.remove_import(importer=package, imported=child)
    assert _cycles(graph) == []


#: Modules that the reporting commands and the store import, and that must not import torch (about 4 s of CPU
#: in every process that does): ``results show`` takes about 2.5 s instead of 8 on 2 cores.
TORCH_FREE = ("benchmark.store.storage", "benchmark.store.identity", "benchmark.store.record_schema",
              "benchmark.reporting.results", "methods.declarations", "methods.registry", "methods.ssl.ssl_registry",
              "methods.core.scores")


def test_the_store_the_results_table_and_the_registries_import_no_torch():
    code = (f"import sys\nfor m in {TORCH_FREE!r}: __import__(m)\n"
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

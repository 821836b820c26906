"""A third-party method plugin, installed from a temporary directory, runs through the CLI.

The plugin is the one printed in docs/PLUGINS.md (the test reads it from there, so the docs stay true).
It is installed the way pip installs a package: the module plus a ``.dist-info`` folder with the
entry point, on a path the interpreter searches.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _plugin_source() -> str:
    text = (ROOT / "docs" / "PLUGINS.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_plugin_imports_only_the_api():
    ours = {m for m in re.findall(r"^(?:from|import) ([\w.]+)", _plugin_source(), re.M)
            if m.split(".")[0] in ("benchmark", "methods", "datasets")}
    assert ours == {"methods.api"}


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site-packages"
    (site / "tent_plugin").mkdir(parents=True)
    (site / "tent_plugin" / "__init__.py").write_text(_plugin_source())
    info = site / "tent_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tent-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[fer_sfda_bench.methods]\ntent = tent_plugin:Tent\n")
    return site


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}", "FERBENCH_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_plugin_is_listed(plugin_site):
    result = _cli(plugin_site, "list", "--json")
    assert result.returncode == 0, result.stderr
    methods = {m["name"]: m for m in json.loads(result.stdout)["methods"]}
    assert methods["tent"]["setting"] == "sfda" and methods["tent"]["module"] == "tent_plugin"
    assert methods["tent"]["hparams"] == {"lr": 0.001, "epochs": 1, "batch_size": 64}


@pytest.mark.slow
def test_plugin_runs_through_the_cli(plugin_site):
    result = _cli(plugin_site, "run", "--method", "tent", "--setup", "synth", "--set", "lr=0.0005", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["method"] == "tent" and record["setting"] == "sfda"
    assert record["hparams"] == {"lr": 0.0005, "epochs": 1, "batch_size": 64}
    assert 0 <= record["accuracy"] <= 100

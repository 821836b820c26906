"""The portable-mode reference run (docs/NUMERICS.md) and its two constants.

``python tests/portable_constants.py`` runs it in a throw-away ``FERBENCH_HOME`` and prints the accuracy and the
SHA-256 of the test predictions that ``tests/integration/test_numerics.py`` asserts: paste them there when the
synthetic data's generator version changes. The test imports ``portable_reference`` from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The smallest budget that still trains: the ``tiny`` profile (width 8, 32 px, one source epoch at batch 256).
COMMAND = ("run", "--method", "source_only", "--setup", "synth", "--seed", "0", "--numerics", "portable",
           "--profile", "tiny", "--json")


def portable_reference(home: Path, extra_env: Mapping[str, str] | None = None) -> tuple[float, str, dict]:
    """Run ``COMMAND`` with ``FERBENCH_HOME=home`` (and ``extra_env``); its accuracy, the SHA-256 of its target
    test predictions (the record's ``test_predictions`` digits) and the record."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1", "FERBENCH_HOME": str(home),
           **(extra_env or {})}
    done = subprocess.run([sys.executable, "-m", "benchmark", *COMMAND], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"portable reference run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    record = json.loads(done.stdout)
    return record["accuracy"], hashlib.sha256(record["test_predictions"].encode()).hexdigest(), record


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ferbench-portable-") as folder:
        accuracy, digest, record = portable_reference(Path(folder))
    print(f"PORTABLE_REFERENCE_ACCURACY = {accuracy!r}")
    print(f'PORTABLE_REFERENCE_PREDICTIONS_SHA256 = "{digest}"')
    print(f"# machine: {record['machine']['label']}; data: {json.dumps(record['data'], sort_keys=True)}")

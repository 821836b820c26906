"""Content-addressed artifacts (source models, SSL backbones...) under ``$FERBENCH_HOME/artifacts``.

An artifact's folder name is a hash of everything that determines it (its *key*). It is built at most
once: concurrent workers serialise on a file lock, the builder writes into a temporary folder, and the
folder is renamed into place only when complete (``key.json`` is written last inside it). A crash leaves
no folder that is later taken for complete.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from benchmark.config.hashing import json_digest
from datasets.registry import home
from methods.core.checkpoints import load_state_dict, save_checkpoint

KEY_FILE = "key.json"


def artifact_key(fields: Mapping[str, Any]) -> str:
    """The artifact's folder name: ``json_digest`` (16 hex digits of SHA-256) of the key ``fields``."""
    return json_digest(fields)


def artifact_dir(kind: str, fields: Mapping[str, Any]) -> Path:
    """Where the artifact of ``kind`` with these key ``fields`` lives (complete or not)."""
    return home() / "artifacts" / kind / artifact_key(fields)


def describe_artifact(name: str) -> str:
    """A short description of the artifact folder ``name`` (kind, dataset, SSL method, seed) from its
    ``key.json``; ``"not in this FERBENCH_HOME"`` when no such complete folder is here."""
    for key_file in sorted((home() / "artifacts").glob(f"*/{name}/{KEY_FILE}")):
        key = json.loads(key_file.read_text())
        parts = [key.get("kind", key_file.parent.parent.name), key.get("ssl"), key.get("dataset")]
        seed = f"seed {key['seed']}" if "seed" in key else None
        return " ".join(str(p) for p in (*parts, seed) if p)
    return "not in this FERBENCH_HOME"


def is_built(path: Path) -> bool:
    """True when the artifact folder is complete."""
    return (path / KEY_FILE).is_file()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get_or_build(kind: str, fields: Mapping[str, Any], build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The artifact folder of ``(kind, fields)``, calling ``build(tmp_dir)`` first if it does not exist.

    ``build`` writes its files into ``tmp_dir``; on return the folder is completed (``key.json``) and
    renamed into place. Returns (folder, whether it was built now).
    """
    final = artifact_dir(kind, fields)
    if is_built(final):
        return final, False
    with _locked(final):
        if is_built(final):  # another worker finished it while we waited
            return final, False
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            build(tmp)
            (tmp / KEY_FILE).write_text(json.dumps({"kind": kind, **fields}, indent=2, sort_keys=True, default=str))
            if final.exists():  # an incomplete leftover of a crashed build
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def save_model(out: Path, weights_file: str, module: nn.Module, key: Mapping[str, Any], info: Mapping[str, Any]) -> None:
    """Inside a ``build(out)`` of ``get_or_build``: write ``module``'s state dict (with the key) to
    ``out/weights_file`` and ``info`` to ``out/info.json``."""
    save_checkpoint(out / weights_file, {"state_dict": module.state_dict(), "key": dict(key)})
    (out / "info.json").write_text(json.dumps(dict(info), indent=2))


def load_model(path: Path, weights_file: str, module: nn.Module, built_now: bool) -> dict[str, Any]:
    """Load ``path/weights_file`` into ``module`` (``weights_only=True``); return ``path/info.json`` with
    ``built_now`` (whether this call trained the artifact) added."""
    module.load_state_dict(load_state_dict(path / weights_file))
    info = json.loads((path / "info.json").read_text())
    info["built_now"] = built_now
    return info

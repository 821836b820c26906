"""Content-addressed artifacts (source models, SSL backbones...) under ``$FERBENCH_HOME/artifacts``.

An artifact's folder name is a hash of everything that determines it (its *key*). It is built at most
once: concurrent workers serialise on a file lock, the builder writes into a temporary folder, and the
folder is renamed into place only when complete (``key.json`` is written last inside it). A crash leaves
no folder that is later taken for complete.

What is loaded is trusted only once checked. ``key.json`` holds the key and, under ``files``, the size and
SHA-256 of every other file of the folder. Each use checks that ``key.json`` parses and matches the key and
that each file has its recorded size; a file's SHA-256 is computed the first time this process uses it
(memoised by path, device, inode, size, mtime and ctime, so a file changed in place is hashed again). Loading
the weights into the module and parsing ``info.json`` is the last check. An artifact failing any check is
moved aside under the lock (``<hash>.corrupt-<time>``, kept for inspection, safe to delete) and rebuilt, with
a one-line warning. An artifact written before hashes were recorded (a ``key.json`` without ``files``) is
adopted: its files are hashed and recorded on first use, and it is then checked like any other.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from benchmark.config.errors import CheckpointError
from benchmark.config.hashing import json_digest
from datasets.cache import file_sha256
from datasets.permissions import staging_dir
from datasets.progress import log
from datasets.registry import home
from methods.core.checkpoints import load_state_dict, save_checkpoint

KEY_FILE = "key.json"
INFO_FILE = "info.json"
#: The entry of ``key.json`` that records ``{relative path: {"size": bytes, "sha256": hex}}`` of the other files.
FILES = "files"
#: ``_problem`` results that are not damage: nothing there yet / complete but written before ``FILES`` existed.
MISSING, LEGACY = "missing", "legacy"

Builder = Callable[[Path], None]
#: Per (path, device, inode, size, mtime ns, ctime ns) of a file: its SHA-256, computed once per process.
_HASHED: dict[tuple[str, int, int, int, int, int], str] = {}
#: Per artifact folder handed out by ``get_or_build`` in this process: (kind, key fields, builder), so that
#: ``load_model`` can rebuild one whose weights do not load.
_BUILDERS: dict[Path, tuple[str, dict[str, Any], Builder]] = {}


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
        try:
            key = json.loads(key_file.read_text())
            parts = [key.get("kind", key_file.parent.parent.name), key.get("ssl"), key.get("dataset")]
        except (OSError, ValueError, AttributeError):
            continue
        seed = f"seed {key['seed']}" if "seed" in key else None
        return " ".join(str(p) for p in (*parts, seed) if p)
    return "not in this FERBENCH_HOME"


def is_built(path: Path) -> bool:
    """True when the artifact folder looks complete (has its ``key.json``; its contents are checked on use)."""
    return (path / KEY_FILE).is_file()


def hash_once(path: Path) -> str:
    """``file_sha256(path)``, memoised in this process until the file's identity (inode, size, mtime,
    ctime) changes."""
    stat = path.stat()
    identity = (str(path.absolute()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if identity not in _HASHED:
        _HASHED[identity] = file_sha256(path)
    return _HASHED[identity]


def file_record(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every file under ``folder`` but its ``key.json``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / KEY_FILE)
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in files}


def _key_record(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``key.json``'s key part as JSON reads it back (tuples as lists, other values as ``str``)."""
    return json.loads(json.dumps({"kind": kind, **fields}, sort_keys=True, default=str))


def _write_key(folder: Path, kind: str, fields: Mapping[str, Any]) -> None:
    """Write ``folder/key.json`` (the key and the file record of what is in ``folder`` now) atomically."""
    record = {**_key_record(kind, fields), FILES: file_record(folder)}
    tmp = folder / f".{KEY_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, folder / KEY_FILE)


def _file_problem(folder: Path, name: str, expected: Mapping[str, Any]) -> str | None:
    """Why ``folder/name`` differs from its record (size always; SHA-256 once per process), or None."""
    path = folder / name
    if not path.is_file():
        return f"{name} is missing"
    size = path.stat().st_size
    if size != expected["size"]:
        return f"{name} has {size} bytes, {expected['size']} recorded"
    if hash_once(path) != expected["sha256"]:
        return f"{name}'s SHA-256 differs from the recorded one"
    return None


def _problem(folder: Path, kind: str, fields: Mapping[str, Any]) -> str | None:
    """Why the artifact ``folder`` cannot be used as it is: ``MISSING``, ``LEGACY`` (usable once adopted), a
    description of the damage, or None when it checks out."""
    if not folder.exists():
        return MISSING
    try:
        record = json.loads((folder / KEY_FILE).read_text())
    except (OSError, ValueError):
        return f"{KEY_FILE} is missing or not JSON"
    if not isinstance(record, dict):
        return f"{KEY_FILE} is not a JSON object"
    files = record.pop(FILES, None)
    if record != _key_record(kind, fields):
        return f"{KEY_FILE} does not hold this artifact's key"
    if files is None:
        return LEGACY
    try:
        return next(filter(None, (_file_problem(folder, name, entry) for name, entry in files.items())), None)
    except (AttributeError, KeyError, TypeError):
        return f"{KEY_FILE}'s file record is malformed"


def _folder_id(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder, None if absent: a rebuilt artifact gets another (the old one is kept)."""
    try:
        stat = folder.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _set_aside(folder: Path, kind: str, why: str) -> None:
    """Rename an unusable artifact ``folder`` to ``<name>.corrupt-<time>`` and say so (hold the lock)."""
    aside = folder.with_name(f"{folder.name}.corrupt-{datetime.now():%Y%m%d-%H%M%S-%f}")
    os.replace(folder, aside)
    log(f"warning: artifact {kind}/{folder.name} is unusable ({why}); moved to {aside.name}, rebuilding it")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def get_or_build(kind: str, fields: Mapping[str, Any], build: Builder) -> tuple[Path, bool]:
    """The artifact folder of ``(kind, fields)``, calling ``build(tmp_dir)`` first if it is missing or damaged.

    ``build`` writes its files into ``tmp_dir``; on return the folder is completed (``key.json`` with the
    files' sizes and hashes) and renamed into place. A damaged folder is moved aside and rebuilt; a legacy
    one (no recorded hashes) is adopted. Returns (folder, whether it was built now).
    """
    final = artifact_dir(kind, fields)
    _BUILDERS[final] = (kind, dict(fields), build)
    if _problem(final, kind, fields) is None:
        return final, False
    return _build(final, kind, fields, build)


def _build(final: Path, kind: str, fields: Mapping[str, Any], build: Builder,
           unloadable: tuple[tuple[int, int] | None, str] | None = None) -> tuple[Path, bool]:
    """Under the lock: check ``final`` again (another worker may have fixed it), set aside a damaged one (or
    the one ``unloadable`` = (folder id, why) names, unless it was replaced meanwhile), adopt a legacy one,
    else build it."""
    with _locked(final):
        if unloadable is not None and final.exists() and _folder_id(final) == unloadable[0]:
            _set_aside(final, kind, unloadable[1])
        problem = _problem(final, kind, fields)
        if problem is None:  # another worker built or repaired it while we waited
            return final, False
        if problem == LEGACY:
            _write_key(final, kind, fields)
            log(f"artifact {kind}/{final.name} predates recorded hashes: recorded them now (trusted on first use)")
            return final, False
        if problem != MISSING:
            _set_aside(final, kind, problem)
        tmp = staging_dir(final)  # shareable like any folder the user makes
        try:
            build(tmp)
            _write_key(tmp, kind, fields)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def save_model(out: Path, weights_file: str, module: nn.Module, key: Mapping[str, Any],
               info: Mapping[str, Any]) -> None:
    """Inside a ``build(out)`` of ``get_or_build``: write ``module``'s state dict (with the key) to
    ``out/weights_file`` and ``info`` to ``out/info.json``."""
    save_checkpoint(out / weights_file, {"state_dict": module.state_dict(), "key": dict(key)})
    (out / INFO_FILE).write_text(json.dumps(dict(info), indent=2))


class _Unloadable(CheckpointError):
    """A file of an artifact that passed its hash check but does not load (the message names the file)."""


def _load(path: Path, weights_file: str, module: nn.Module, built_now: bool) -> dict[str, Any]:
    """The weights loaded into ``module`` and ``info.json`` with ``built_now``; ``_Unloadable`` if either fails."""
    try:
        module.load_state_dict(load_state_dict(path / weights_file))
    except (CheckpointError, RuntimeError) as error:
        raise _Unloadable(f"{weights_file} does not load into the model: {error}") from None
    try:
        info = json.loads((path / INFO_FILE).read_text())
    except (OSError, ValueError) as error:
        raise _Unloadable(f"{INFO_FILE} does not load: {error}") from None
    if not isinstance(info, dict):
        raise _Unloadable(f"{INFO_FILE} is not a JSON object")
    return {**info, "built_now": built_now}


class LoadedArtifact(Protocol):
    """A loaded artifact (``SourceModel``, ``PretrainedBackbone``): its folder and its ``info.json`` with
    ``built_now`` (``load_model``)."""

    path: Path
    info: dict[str, Any]


def built_now_entry(artifact: LoadedArtifact) -> dict[str, bool]:
    """``{artifact folder name: whether this process trained it}``: its entry in a record's
    ``artifacts.built_now`` (run and probe records alike; a sweep's summary counts them)."""
    return {artifact.path.name: bool(artifact.info["built_now"])}


def load_model(path: Path, weights_file: str, module: nn.Module, built_now: bool) -> dict[str, Any]:
    """Load ``path/weights_file`` into ``module`` (``weights_only=True``, strict keys and shapes); return
    ``path/info.json`` with ``built_now`` (whether this process trained the artifact) added.

    If the weights or ``info.json`` do not load, the artifact is moved aside and rebuilt with the builder
    ``get_or_build`` was given for ``path`` in this process (a ``CheckpointError`` if there is none).
    """
    seen = _folder_id(path)
    try:
        return _load(path, weights_file, module, built_now)
    except _Unloadable as error:
        why = " ".join(str(error).split())[:200]
    if path not in _BUILDERS:
        raise CheckpointError(f"artifact {path} is unusable ({why}); delete it to have it rebuilt")
    kind, fields, build = _BUILDERS[path]
    path, built = _build(path, kind, fields, build, unloadable=(seen, why))
    return _load(path, weights_file, module, built)

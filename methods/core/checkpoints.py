"""Saving and loading weights without ever unpickling arbitrary objects.

Every load goes through ``torch.load(..., weights_only=True)``: tensors, containers and primitive types
only. A file that needs more (a pickled class, a ``__reduce__`` payload, a Lightning checkpoint holding
custom objects) is refused with a ``CheckpointError`` that says why, instead of being executed.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from benchmark.config.errors import CheckpointError


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, str/int/float/bool/None) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        torch.save(dict(payload), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse anything that would need arbitrary unpickling."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file needs arbitrary unpickling, which could run code "
            f"(only tensors and plain containers are accepted; torch said: {first_line})"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({error})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(payload).__name__}")
    return payload


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path``: the file itself, or its ``state_dict`` / ``model`` entry."""
    payload = load_checkpoint(path)
    for key in ("state_dict", "model"):
        if isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    if not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return payload

"""Saving and loading weights without ever unpickling arbitrary objects.

Every load goes through ``torch.load(..., weights_only=True)``: tensors, containers and primitive types
only. A file that needs more (a pickled class, a ``__reduce__`` payload, ``os.system``, ``open`` ...) is refused
with a ``CheckpointError`` that says why, instead of being executed.

Lightning checkpoints (``load_checkpoint(path, lightning=True)``, used for solo-learn ``.ckpt`` files) pickle
their hyper-parameters as objects: an ``argparse.Namespace`` (older solo-learn) or an OmegaConf ``DictConfig``
(later releases, whose pickled form also names ``ListConfig``, ``ContainerMetadata``, ``AnyNode``, ``typing.Any``,
``collections.defaultdict``, ``builtins.dict`` ...). For those the same ``weights_only`` unpickler is used, with
exactly the names in ``LIGHTNING_INERT_GLOBALS`` allowed for that one load; but each name is bound to an inert
stand-in of ours (an ``InertObject`` subclass that records its name, arguments and state, or a plain ``dict``),
never to the real class. So nothing named in the file is imported, constructed or ``__setstate__``-ed: the
only code that runs is torch's own tensor rebuilding and these stand-ins. Any other global is refused as before.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from benchmark.config.errors import CheckpointError
from datasets.permissions import staging_file


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, str/int/float/bool/None) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_file(path)  # 0644 under umask 022, not mkstemp's 0600
    try:
        torch.save(dict(payload), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class InertObject:
    """What an allow-listed hyper-parameter object of a Lightning checkpoint loads as: a record, not the object.

    ``qualname`` is the pickled global's name (e.g. ``"argparse.Namespace"``); ``args`` the arguments the pickle
    passed to it and ``state`` what it passed to ``__setstate__`` (a dict of plain values, tensors or other
    ``InertObject``). No method here looks inside them or calls anything.
    """

    qualname: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:  # an instance of cls
        self = object.__new__(cls)
        self.args = args
        self.state = None
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


class _InertDict:
    """Stand-in for dict subclasses (``collections.defaultdict``, Lightning's ``AttributeDict``): a plain, empty
    ``dict`` (the arguments, e.g. a default factory, are dropped), which the unpickler then fills with the items."""

    def __new__(cls, *args: Any, **kwargs: Any) -> dict:
        return {}


#: Globals a Lightning / solo-learn checkpoint may name in its hyper-parameters, all of them plain data.
_INERT_NAMES = (
    "argparse.Namespace",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    *(f"omegaconf.nodes.{node}" for node in (
        "AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode", "EnumNode",
        "InterpolationResultNode")),
    "typing.Any",
    # type objects referenced as values (OmegaConf's ``object_type``, ``key_type`` ...), never called here
    *(f"builtins.{name}" for name in ("dict", "list", "tuple", "int", "float", "str", "bool", "bytes", "object")),
    "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
)
_DICT_NAMES = (
    "collections.defaultdict",
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
)


def _inert_class(name: str) -> type[InertObject]:
    return type(f"Inert[{name}]", (InertObject,), {"qualname": name, "__module__": __name__})


#: ``{pickled global name: inert stand-in}`` allowed (only) in ``load_checkpoint(..., lightning=True)``.
LIGHTNING_INERT_GLOBALS: dict[str, Any] = {
    **{name: _inert_class(name) for name in _INERT_NAMES},
    **{name: _InertDict for name in _DICT_NAMES},
}

_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch",
                      "(1)", "(2)")
_REFUSAL_MARKERS = ("GLOBAL", "allowlisted", "add_safe_globals", "unrecognized function", "Can only")


def _torch_detail(error: BaseException) -> str:
    """The informative part of an error from torch's loader (it wraps the unpickler's reason in generic advice)."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = [line for line in lines if not line.startswith(_TORCH_BOILERPLATE)]
    line = (detail or lines or [type(error).__name__])[0]
    line = line.split(" Please use `torch.serialization", 1)[0]  # not advice to allow-list what we refuse
    return line if len(line) <= 300 else line[:297] + "..."


def _supports_named_safe_globals() -> bool:
    """``safe_globals([(obj, "module.name")])`` (binding a name to an object of ours) exists from torch 2.6."""
    return hasattr(torch.serialization, "safe_globals") and torch.__version__ >= (2, 6)


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error.strerror or error})") from None
    if not head:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (empty file)")
    is_zip = head == b"PK\x03\x04"
    is_pickle = head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5  # PROTO opcode, protocol 2..5
    if not (is_zip or is_pickle):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (not a zip/pickle file)")


def load_checkpoint(path: str | Path, *, lightning: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse anything that would need arbitrary unpickling.

    Args:
        path: a file written by ``torch.save`` (zip or legacy format).
        lightning: also accept the hyper-parameter objects of a PyTorch Lightning checkpoint (``Namespace``,
            OmegaConf ``DictConfig`` ...), each loaded as an inert ``InertObject`` record (see the module
            docstring); tensors and plain values load as usual. Needs torch >= 2.6.

    Raises:
        CheckpointError: a missing, empty, truncated or non-checkpoint file; a file that names any other global
            (the message says which); a payload that is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    _check_header(path)
    allowed = lightning and _supports_named_safe_globals()
    try:
        if allowed:
            named = [(stand_in, name) for name, stand_in in LIGHTNING_INERT_GLOBALS.items()]
            with torch.serialization.safe_globals(named):  # scoped to this one load
                payload = torch.load(path, map_location="cpu", weights_only=True)
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _torch_detail(error)
        if not any(marker in detail for marker in _REFUSAL_MARKERS):
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint (unsupported or corrupt pickle data: {detail})"
            ) from None
        accepted = "tensors, plain containers and inert hyper-parameter records" if allowed else \
            "tensors and plain containers"
        hint = ""
        if lightning and not allowed:
            hint = "; reading a Lightning checkpoint's hyper-parameter objects needs torch >= 2.6"
        raise CheckpointError(
            f"{path}: refused to load: the file needs arbitrary unpickling, which could run code "
            f"(only {accepted} are accepted; torch said: {detail}){hint}"
        ) from None
    except EOFError:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated file)") from None
    except (RuntimeError, OSError) as error:
        detail = _torch_detail(error).split(". ")[0]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {detail})") from None
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

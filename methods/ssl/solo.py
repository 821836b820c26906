"""Import the backbone of a solo-learn ``.ckpt`` (SwAV, DeepClusterV2, ...) as a benchmark backbone.

solo-learn saves a PyTorch Lightning checkpoint whose weights live in ``ckpt["state_dict"]`` under the keys

* ``backbone.<torchvision resnet keys>`` (older releases: ``encoder.<...>``): what is imported here;
* ``projector.*``, ``prototypes.weight_g`` / ``prototypes.weight_v`` (SwAV) or ``prototypes.{0,1,2}.weight``
  (DCv2), ``momentum_backbone.*`` ...: the SSL heads, ignored.

The backbone has no ``fc`` in solo-learn; if one is present (``backbone.fc.*``) it is dropped, since the
benchmark's backbone ends in ``fc = Identity``. Everything else must match exactly: a missing, unexpected or
mis-shaped tensor is a ``CheckpointError``, never a silently half-initialised network.

The stem cannot always be read off the weights: a 3x3 ``conv1`` is the ``small`` (CIFAR) stem, but a 7x7
``conv1`` is either ``imagenet`` (stride 2, max-pool) or ``clup`` (stride 1, padding 2, no max-pool), which
differ only in hyper-parameters that leave no trace in the state dict. So ``stem`` is inferred for 3x3
kernels and must be given for 7x7 ones.

Loading goes through ``methods.core.checkpoints.load_checkpoint(path, lightning=True)`` (``weights_only=True``):
the hyper-parameter objects Lightning pickles (an ``argparse.Namespace`` in older solo-learn releases, an
OmegaConf ``DictConfig`` in later ones) load as inert records that are never constructed or executed, so a
checkpoint exactly as solo-learn wrote it is accepted; any other pickled object (``os.system``, ``open``, a
custom class) is refused there with a clear message rather than unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.config.errors import CheckpointError, UserError
from methods.core.checkpoints import load_checkpoint
from methods.core.models import ARCHS, STEMS, build_backbone, check_backbone_state

#: Key prefixes of the backbone in solo-learn checkpoints, newest first.
SOLO_PREFIXES = ("backbone.", "encoder.")
_CANONICAL_PREFIX = "backbone."


def _top_level_prefixes(keys: list[str], limit: int = 8) -> str:
    prefixes = sorted({key.split(".", 1)[0] for key in keys})
    shown = ", ".join(repr(p) for p in prefixes[:limit])
    more = f" (+{len(prefixes) - limit} more)" if len(prefixes) > limit else ""
    return (shown + more) if prefixes else "nothing"


def backbone_state_from_solo(payload: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone's state dict from a loaded solo-learn checkpoint.

    Args:
        payload: the checkpoint dict; the weights are ``payload["state_dict"]`` (a Lightning checkpoint) or,
            if there is no such entry, the payload itself when it is a flat ``{name: tensor}`` dict.

    Returns:
        ``{torchvision key: tensor}``, e.g. ``"conv1.weight": (W, 3, k, k)``, ``"layer1.0.bn1.weight": (W,)``:
        the ``backbone.`` (or older ``encoder.``) keys with the prefix stripped and ``fc.*`` dropped.

    Raises:
        CheckpointError: no weights, no backbone keys (the message lists the top-level prefixes that were
            found), both prefixes at once, or a backbone entry that is not a tensor.
    """
    state = payload.get("state_dict") if isinstance(payload, Mapping) else None
    if state is None:
        if isinstance(payload, Mapping) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            state = payload
        else:
            keys = list(payload) if isinstance(payload, Mapping) else []
            raise CheckpointError(
                "not a solo-learn checkpoint: no 'state_dict' entry and not a flat dict of tensors "
                f"(top-level keys: {', '.join(repr(k) for k in keys[:8]) or 'none'})"
            )
    if not isinstance(state, Mapping):
        raise CheckpointError(f"not a solo-learn checkpoint: 'state_dict' is a {type(state).__name__}, not a dict")

    keys = [str(k) for k in state]
    found = [p for p in SOLO_PREFIXES if any(k.startswith(p) for k in keys)]
    if not found:
        raise CheckpointError(
            "no backbone weights in the checkpoint: expected keys starting with "
            f"{' or '.join(repr(p) for p in SOLO_PREFIXES)}, found top-level prefixes {_top_level_prefixes(keys)}"
        )
    if len(found) > 1:
        raise CheckpointError(
            f"ambiguous checkpoint: it has both {found[0]!r} and {found[1]!r} keys; cannot tell which is the backbone"
        )
    prefix = found[0]

    backbone: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.startswith("fc."):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"backbone entry {key!r} is a {type(value).__name__}, not a tensor")
        backbone[name] = value
    if not backbone:
        raise CheckpointError(f"the checkpoint's {prefix!r} keys hold only an 'fc' layer, no backbone")
    return backbone


def _conv1(state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    weight = state.get("conv1.weight")
    if weight is None:
        raise CheckpointError(
            f"backbone has no 'conv1.weight' (found {_top_level_prefixes(list(state))}); not a torchvision ResNet"
        )
    if weight.ndim != 4 or weight.shape[1] != 3 or weight.shape[2] != weight.shape[3]:
        raise CheckpointError(
            f"'conv1.weight' has shape {tuple(weight.shape)}; expected (width, 3, k, k) for an RGB ResNet stem"
        )
    return weight


def infer_width(state: Mapping[str, torch.Tensor]) -> int:
    """Channels of the first stage: ``conv1.weight`` is ``(width, 3, k, k)``."""
    return int(_conv1(state).shape[0])


def infer_arch(state: Mapping[str, torch.Tensor], arch: str | None = None) -> str:
    """``resnet50`` if the blocks are bottlenecks (``layer1.0.conv3.weight`` exists); of basic blocks,
    ``resnet18`` with two per stage (``layer1.1`` exists), ``resnet10`` with one.

    A given ``arch`` is checked against the weights; a mismatch is a ``CheckpointError``.
    """
    if "layer1.0.conv3.weight" in state:
        inferred, block = "resnet50", "bottleneck"
    else:
        inferred = "resnet18" if "layer1.1.conv1.weight" in state else "resnet10"
        block = "basic"
    if arch is None:
        return inferred
    if arch not in ARCHS:
        raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    if arch != inferred:
        raise CheckpointError(f"arch {arch!r} does not match the checkpoint: its blocks are {block} ({inferred})")
    return arch


def infer_stem(state: Mapping[str, torch.Tensor], stem: str | None = None) -> str:
    """The stem of a backbone state dict, from the kernel size of ``conv1.weight`` ``(width, 3, k, k)``.

    * k == 3: ``small``; ``stem`` may be omitted (if given it must be ``small``).
    * k == 7: ``imagenet`` or ``clup``; the weights cannot tell them apart (stride, padding and max-pool
      leave no trace), so ``stem`` is required.

    Raises:
        CheckpointError: a 7x7 kernel without ``stem``, a ``stem`` whose kernel size differs from the
            checkpoint's, or a kernel size no stem uses.
        UserError: an unknown stem name.
    """
    if stem is not None and stem not in STEMS:
        raise UserError(f"unknown stem {stem!r}; known: {', '.join(STEMS)}")
    kernel = int(_conv1(state).shape[-1])
    if kernel == 3:
        if stem not in (None, "small"):
            raise CheckpointError(f"stem {stem!r} uses a 7x7 conv1, but the checkpoint's conv1 is 3x3 (stem 'small')")
        return "small"
    if kernel == 7:
        if stem is None:
            raise CheckpointError(
                "the checkpoint's conv1 is 7x7, which is either stem 'imagenet' (stride 2, max-pool) or 'clup' "
                "(stride 1, padding 2, no max-pool); the weights cannot tell them apart, so pass stem explicitly"
            )
        if stem == "small":
            raise CheckpointError("stem 'small' uses a 3x3 conv1, but the checkpoint's conv1 is 7x7 "
                                  "(stem 'imagenet' or 'clup')")
        return stem
    raise CheckpointError(f"the checkpoint's conv1 is {kernel}x{kernel}; no known stem uses that kernel size "
                          "(3x3: small, 7x7: imagenet or clup)")


def load_solo_backbone(
    path: str | Path, stem: str | None = None, arch: str | None = None
) -> tuple[nn.Module, int, dict[str, Any]]:
    """Build a benchmark backbone and load a solo-learn checkpoint's backbone weights into it.

    Args:
        path: the solo-learn ``.ckpt`` as Lightning wrote it (loaded with ``weights_only=True``, its
            hyper-parameter objects as inert records; see ``load_checkpoint``).
        stem: ``small`` / ``imagenet`` / ``clup``; inferred for a 3x3 ``conv1``, required for a 7x7 one.
        arch: ``resnet10`` / ``resnet18`` / ``resnet50``; inferred from the blocks if omitted, checked if given.

    Returns:
        ``(backbone, D, info)``: the backbone maps (B, 3, H, W) float -> (B, D) features (``fc`` is
        Identity; width W gives D = 8W for resnet10 and resnet18, 32W for resnet50); ``info`` holds ``arch``,
        ``stem``, ``width``, ``n_tensors`` (tensors loaded), ``source`` (the path) and ``prefix`` (``backbone.``
        or ``encoder.``). The backbone is returned in training mode, like a freshly built one.

    Raises:
        CheckpointError: an unreadable or unsafe file, no backbone keys, an ambiguous stem, or weights that
            do not match the network exactly (anything but ``fc`` missing, unexpected keys, shape mismatch).
    """
    path = Path(path)
    payload = load_checkpoint(path, lightning=True)
    try:
        state = backbone_state_from_solo(payload)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    keys = payload["state_dict"] if isinstance(payload.get("state_dict"), Mapping) else payload
    prefix = next(p for p in SOLO_PREFIXES if any(str(k).startswith(p) for k in keys))
    try:
        arch = infer_arch(state, arch)
        stem = infer_stem(state, stem)
        width = infer_width(state)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None

    backbone, feature_dim = build_backbone(arch, stem, width)
    check_backbone_state(state, backbone.state_dict(), f"{path} ({arch}, stem {stem}, width {width})")
    backbone.load_state_dict(state, strict=True)
    info = {
        "arch": arch,
        "stem": stem,
        "width": width,
        "n_tensors": len(state),
        "source": str(path),
        "prefix": prefix,
    }
    return backbone, feature_dim, info

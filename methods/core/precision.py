"""How training runs on the device: bf16 autocast, fp32 regions, channels-last and ``torch.compile``.

A profile asks for them (``Profile.precision``, ``channels_last``, ``compile``; docs/PERFORMANCE.md, "Mixed
precision and memory format"). At ``precision="fp32"``, ``channels_last=False``, ``compile=False`` every
function here is a no-op. The ``quick`` and ``tiny`` profiles are fp32 and channels-last (1.2-1.3x faster on
CPU at one thread; docs/PERFORMANCE.md, "The quick profile's speed"); ``channels_last`` is a numerics field, so
it is part of every artifact and job key.

Under autocast, matmuls and convolutions run in bf16 and, on CPU, so do softmax, exp and sums of bf16
inputs. Code whose numerics need fp32 (Sinkhorn-Knopp, k-means, similarity banks, softmax statistics) runs
inside ``full_precision`` on inputs cast with ``.float()``.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile

PRECISIONS = ("fp32", "bf16", "auto")


def autocast_dtype(profile: Profile, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training at ``profile`` on ``device``: ``torch.bfloat16``, or None for fp32.

    ``bf16``: on any device (CPU included). ``auto``: on CUDA devices with native bf16 (Ampere and newer),
    fp32 elsewhere. ``fp32``: None.
    """
    if profile.precision not in PRECISIONS:
        raise UserError(f"unknown precision {profile.precision!r}; known: {', '.join(PRECISIONS)}")
    if profile.precision == "bf16":
        return torch.bfloat16
    if profile.precision == "auto" and torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None
    return None


def training_numerics(profile: Profile, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training forward pass and its loss run in: bf16 autocast on ``device`` when
    ``autocast_dtype`` says so, else a null context. Run ``backward`` outside it (PyTorch's advice; the
    backward pass uses the forward's dtypes anyway)."""
    dtype = autocast_dtype(profile, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def full_precision(where: torch.device | torch.Tensor | str) -> contextlib.AbstractContextManager:
    """A context with autocast disabled on the device of ``where`` (a device, a device name or a tensor on it).

    Inside it ops run in their inputs' dtype: cast bf16 inputs with ``.float()``. A no-op outside autocast.
    """
    device = where.device if isinstance(where, torch.Tensor) else torch.device(where)
    return torch.autocast(device.type, enabled=False)


def _compile_forward(module: nn.Module) -> None:
    """Route ``module``'s calls through ``torch.compile`` of its class's ``forward``, bound per instance.

    The compiled function is stored as a ``functools.partial(compiled, module)`` instance attribute: it adds no
    parameter or buffer (state-dict keys unchanged), and ``copy.deepcopy`` rebinds the partial to the copy
    (the copy is compiled too and shares the compiled graph). ``nn.Module.compile`` would also keep the keys,
    but its ``__getstate__`` drops the compiled call, so a deep copy (every method copies the source model)
    would run eagerly.
    """
    if isinstance(module.__dict__.get("forward"), functools.partial):  # already compiled
        return
    module.forward = functools.partial(torch.compile(type(module).forward), module)


def prepare_for_training(model: nn.Module, profile: Profile) -> nn.Module:
    """Apply the profile's memory format and compilation to ``model`` in place; returns ``model``.

    - ``profile.channels_last``: every 4-d parameter and buffer goes to ``torch.channels_last`` (convolutions
      then run NHWC; inputs may stay NCHW, feeding them channels-last saves a conversion). Deep copies keep it.
    - ``profile.compile``: ``torch.compile`` of the forward of ``model.backbone`` when ``model`` has one (a
      ``Classifier``: so that ``model(x)``, ``model.embed(x)`` and ``model.backbone(x)`` are all compiled;
      the small head stays eager), else of ``model.forward``. State-dict keys do not change, ``load_state_dict``
      and ``copy.deepcopy`` work (the copy stays compiled). The first call of each mode (train/eval, grad or
      not, autocast or not) compiles: about a minute on 2 CPU cores for a ResNet-18, once per process.

    It does not: set the precision (``training_numerics`` does, around each forward), move the model to a
    device, make the model picklable as a whole (``torch.save(model)``; state dicts are what is saved), or
    change anything at ``channels_last=False, compile=False``.
    """
    if profile.channels_last:
        model.to(memory_format=torch.channels_last)
    if profile.compile:
        backbone = getattr(model, "backbone", None)
        _compile_forward(backbone if isinstance(backbone, nn.Module) else model)
    return model

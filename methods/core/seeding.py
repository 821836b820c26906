"""Seed derivation (DomainBed style) and global seeding.

Every random stream of a run gets its own seed derived from the user's seed and the stream's name, so
adding a stream never shifts another, and the derived seeds are recorded in the run record.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A seed in [0, 2**31) from the MD5 of the parts' reprs, e.g. ``derive_seed("source", "synth-lab", 0)``."""
    digest = hashlib.md5(repr(parts).encode()).hexdigest()
    return int(digest[:8], 16) % (2**31)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without moving the global Python, NumPy and torch (CPU and CUDA) random streams.

    For work that may or may not happen depending on a cache (e.g. building an artifact mid-run): the
    caller's streams continue the same either way, so a cached and an uncached run give the same result.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The state of ``generator`` and of torch's global CPU (and current CUDA) streams, for a checkpoint."""
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(generator: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    """Restore what ``rng_state`` saved (a resumed run continues the same random streams)."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])

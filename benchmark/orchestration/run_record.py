"""What every stored record shares (runs and probes): identity fields, stage timings and the environment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from benchmark.config.machine import fingerprint
from benchmark.config.numerics import process_numerics
from benchmark.config.profiles import Profile
from benchmark.config.versions import versions


class StageTimer:
    """Wall-clock seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    def environment(self, device: torch.device) -> dict[str, Any]:
        """``seconds`` per stage, package ``versions``, ``device``, CPU ``threads`` (CPU results are
        reproducible at a given thread count) and the ``machine`` fingerprint (``benchmark.config.machine``)."""
        return {"seconds": self.seconds, "versions": versions(), "device": str(device),
                "threads": torch.get_num_threads(), "machine": fingerprint(device, process_numerics())}


def common_fields(*, method: str, setting: str, setup: str, profile: Profile, seed: int, hparams: dict[str, Any],
                  recipe: str) -> dict[str, Any]:
    """The identifying fields every record starts with (docs/PROTOCOL.md, "The run record")."""
    return {"method": method, "setting": setting, "setup": setup, "profile": profile.name,
            "profile_values": profile.as_record(), "recipe": recipe, "seed": seed, "hparams": hparams}

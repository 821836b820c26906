"""The synthetic benchmark's calibration check: is synth-lab -> synth-wild a real, learnable domain shift?

Three numbers, all at the setup's profile and seed: the source model trained on the source domain
scored on (1) its own test split and (2) the target test split, and (3) the same network trained with
target train labels (the target's own source model) scored on the target test split. The generator was
tuned once until (1) >= 90, (2) <= 70 and (3) >= 85, then frozen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmark.config.devices import resolve_device
from benchmark.config.profiles import get_profile
from benchmark.config.setups import get_setup
from benchmark.services.source import get_source_model, split_tensors
from methods.core.evaluation import evaluate

TARGETS = {"source_on_source": (">=", 90.0), "source_on_target": ("<=", 70.0), "target_on_target": (">=", 85.0)}


def calibrate(setup: str = "synth", seed: int = 0, device: str = "auto", *, numerics: str = "native") -> dict[str, Any]:
    """Measure the three calibration numbers of ``setup`` (accuracy %, target test split unless named) in the
    ``numerics`` mode (docs/NUMERICS.md)."""
    the_setup = get_setup(setup)
    profile = replace(get_profile(the_setup.profile), numerics=numerics)
    torch_device = resolve_device(device)
    on_source = get_source_model(the_setup.source, profile, seed, torch_device)
    on_target = get_source_model(the_setup.target, profile, seed, torch_device)
    target_test = split_tensors(the_setup.target, "test", profile, torch_device)
    numbers = {
        "source_on_source": on_source.info["source_test"]["accuracy"],
        "source_on_target": evaluate(on_source.model, target_test.images, target_test.labels).accuracy,
        "target_on_target": on_target.info["source_test"]["accuracy"],
    }
    passed = {
        name: (value >= bound if op == ">=" else value <= bound)
        for name, value in numbers.items()
        for op, bound in [TARGETS[name]]
    }
    return {
        "setup": setup,
        "source": the_setup.source,
        "target": the_setup.target,
        "profile": profile.name,
        "seed": seed,
        "accuracy": numbers,
        "targets": {name: f"{op} {bound:g}" for name, (op, bound) in TARGETS.items()},
        "passed": passed,
    }

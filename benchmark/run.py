"""One run: setup -> data -> source model -> method.adapt -> evaluation on target test -> record.

The method sees only what its setting allows (``methods.inputs``): the harness builds those views here,
and the target test labels are used only after ``adapt`` returns, to score the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from benchmark.devices import resolve_device
from benchmark.evaluation import evaluate
from benchmark.profiles import Profile, get_profile
from benchmark.progress import log
from benchmark.seeding import derive_seed, seed_everything
from benchmark.setups import get_setup
from benchmark.source import SplitTensors, get_source_model, split_tensors
from benchmark.versions import versions
from methods import registry
from methods.base import RunContext, Setting
from methods.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages


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


def _labelled(split: SplitTensors, device: torch.device) -> LabelledImages:
    return LabelledImages(split.images, torch.from_numpy(split.labels).to(device))


def _method_inputs(setting: Setting, source: str, target: str, profile: Profile, device: torch.device) -> Any:
    """The data a method of ``setting`` is allowed to see, and nothing more."""
    if setting is Setting.SOURCE:
        return None
    target_train = split_tensors(target, "train", profile, device)
    if setting is Setting.ORACLE:
        return OracleData(target=_labelled(target_train, device))
    unlabelled = UnlabelledImages(target_train.images)
    if setting is Setting.SFDA:
        return SourceFreeData(target=unlabelled)
    return UdaData(source=_labelled(split_tensors(source, "train", profile, device), device), target=unlabelled)


def run_method(
    method: str,
    setup: str,
    seed: int = 0,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Run ``method`` on ``setup`` and return its run record (see DESIGN.md, "The run record").

    Args:
        method: registered method name.
        setup: setup name (``synth``, ``raf_fer2013``...).
        seed: the user's seed; per-stage seeds are derived from it and recorded.
        profile: profile name; default = the setup's.
        overrides: ``--set KEY=VALUE`` hyperparameters (validated against the method's declaration).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
    """
    timer = StageTimer()
    the_setup = get_setup(setup)
    the_profile = get_profile(profile or the_setup.profile)
    cls = registry.get(method)
    hparams = registry.resolve_hparams(cls, the_setup.hparams, overrides or {})
    torch_device = resolve_device(device)
    log(f"run {method} on {setup} (profile {the_profile.name}, seed {seed}, device {torch_device})")

    with timer.stage("data"):
        target_test = split_tensors(the_setup.target, "test", the_profile, torch_device)
    with timer.stage("source"):
        source = get_source_model(the_setup.source, the_profile, seed, torch_device)
    method_seed = derive_seed("method", method, setup, seed)
    with timer.stage("data"):
        data = _method_inputs(cls.setting, the_setup.source, the_setup.target, the_profile, torch_device)
    with timer.stage("adapt"):
        ctx = RunContext(torch_device, the_profile, method_seed, seed_everything(method_seed))
        model = cls(hparams).adapt(source.model, data, ctx)
    with timer.stage("evaluate"):
        result = evaluate(model, target_test.images, target_test.labels, the_profile.eval_batch_size)

    return {
        "method": method,
        "setting": cls.setting.value,
        "setup": setup,
        "source_dataset": the_setup.source,
        "target_dataset": the_setup.target,
        "profile": the_profile.name,
        "profile_values": the_profile.as_record(),
        "seed": seed,
        "seeds": {"source": source.info["train_seed"], "method": method_seed},
        "hparams": hparams,
        "accuracy": result.accuracy,
        "mean_class_accuracy": result.mean_class_accuracy,
        "class_accuracy": result.class_accuracy,
        "confusion": result.confusion,
        "n_test": result.n,
        "validators": ctx.stats.pop("validators", {}),
        "pseudo_labels": ctx.stats.pop("pseudo_labels", None),
        "method_stats": ctx.stats,
        "source_test_accuracy": source.info["source_test"]["accuracy"],
        "artifacts": {"source": source.path.name, "backbone": None},
        "seconds": timer.seconds,
        "versions": versions(),
        "data": {
            "source_train_images_sha256": source.info["train_images_sha256"],
            "target_test_images_sha256": target_test.manifest_sha256,
        },
        "device": str(torch_device),
    }

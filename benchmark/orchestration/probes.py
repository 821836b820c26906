"""Probe jobs (the CluP paper's Table 3): each frozen backbone probed on a setup's target, one stored trial each.

The probe itself (``benchmark.services.probe``) uses target labels by design; its records say ``oracle``.
Trials live in the study ``probe/<setup>/<profile>``.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from benchmark.config.devices import resolve_device
from benchmark.config.profiles import get_profile
from benchmark.config.setups import get_setup
from benchmark.config.versions import versions
from benchmark.services.probe import PROBE_BACKBONES, frozen_backbone, linear_probe
from benchmark.services.source import split_tensors
from benchmark.store.identity import job_recipe
from benchmark.store.storage import TrialRequest, complete, open_storage, trial_for_run
from datasets.progress import log
from methods.core.inference import backbone_features


def run_probes(
    setup: str,
    backbones: tuple[str, ...] = PROBE_BACKBONES,
    seed: int = 0,
    profile: str | None = None,
    device: str = "auto",
    storage: str | None = None,
    claimed: tuple[optuna.Study, optuna.trial.Trial] | None = None,
) -> list[dict[str, Any]]:
    """Probe each backbone on ``setup``'s target; one stored trial per available backbone.

    Returns one record per backbone: ``{"kind": "probe", "backbone", "available", "note", "accuracy", ...}``
    (no accuracy when the backbone is unavailable, e.g. ImageNet without a local weights file).
    ``claimed``: a trial a sweep worker claimed for the (single) backbone (default: a new trial per backbone).
    """
    the_setup = get_setup(setup)
    the_profile = get_profile(profile or the_setup.profile)
    torch_device = resolve_device(device)
    train = split_tensors(the_setup.target, "train", the_profile, torch_device)
    test = split_tensors(the_setup.target, "test", the_profile, torch_device)
    store = open_storage(storage)
    records = []
    for name in backbones:
        backbone, note = frozen_backbone(name, setup, the_profile, seed, torch_device)
        base = {"kind": "probe", "backbone": name, "method": f"probe:{name}", "setting": "oracle", "setup": setup,
                "target_dataset": the_setup.target, "profile": the_profile.name, "seed": seed, "note": note}
        if backbone is None:
            records.append({**base, "available": False})
            log(f"probe {name}: unavailable ({note})")
            if claimed is not None:  # a sweep's cell: keep why it is empty in the storage
                claimed[1].set_user_attr("unavailable", note)
                claimed[0].tell(claimed[1], state=TrialState.PRUNED)
            continue
        attrs = {"method": base["method"], "setting": "oracle", "setup": setup, "profile": the_profile.name, "seed": seed,
                 "recipe": job_recipe(base["method"], the_profile.name, {"backbone": name})}
        request = TrialRequest(f"probe/{setup}/{the_profile.name}", {"backbone": name}, attrs=attrs)
        with trial_for_run(store, request, claimed) as (study, trial):
            start = time.perf_counter()
            evaluation, _ = linear_probe(
                backbone_features(backbone, train.images).cpu().numpy(), train.labels,
                backbone_features(backbone, test.images).cpu().numpy(), test.labels, seed,
            )
            record = {**base, "available": True, "hparams": {"backbone": name}, "recipe": attrs["recipe"],
                      "profile_values": the_profile.as_record(), **evaluation,
                      "seconds": {"probe": round(time.perf_counter() - start, 3)}, "versions": versions(),
                      "device": str(torch_device), "threads": torch.get_num_threads()}
            complete(study, trial, record)
        log(f"probe {name}: {record['accuracy']:.2f}%")
        records.append(record)
    return records

"""Probe jobs (the CluP paper's Table 3): each frozen backbone probed on a setup's target, one stored trial each.

The probe itself (``benchmark.services.linear_probe``) uses target labels by design; its records say ``oracle``.
Trials live in the study ``probe/<setup>/<profile>``, and they are all scored on the target **test** split.
A probe scored on ``val`` (``split="val"``: choosing protocol settings, docs/SSL.md, "Which split chose what")
is returned and logged but never stored, so no leaderboard or report can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from benchmark.config.devices import resolve_device
from benchmark.config.errors import UserError
from benchmark.config.numerics import ensure_numerics
from benchmark.config.profiles import Profile
from benchmark.config.setups import get_setup
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.orchestration.run_record import StageTimer, common_fields
from benchmark.services.linear_probe import PROBE_BACKBONES, PROBE_SPLITS, REPORTED_SPLIT, frozen_backbone, linear_probe
from benchmark.services.source import SplitTensors, split_tensors
from benchmark.store.identity import job_recipe
from benchmark.store.storage import open_storage
from benchmark.store.study_scan import Storage
from benchmark.store.trial_runs import ClaimedTrial, TrialRequest, trial_for_run
from datasets.progress import log
from methods.declarations import Setting
from methods.core.inference import backbone_features
from methods.core.scores import encode_digits


def _fit_and_score(backbone: torch.nn.Module, splits: tuple[SplitTensors, SplitTensors], seed: int) -> dict[str, Any]:
    """The probe's evaluation record: fitted on the first split's features and labels, scored on the second's."""
    train, scored = splits
    evaluation, predictions = linear_probe(
        backbone_features(backbone, train.images).cpu().numpy(), train.labels,
        backbone_features(backbone, scored.images).cpu().numpy(), scored.labels, seed,
    )
    # Per-image correctness, as in a run record: what the leaderboard's paired intervals resample.
    return {**evaluation, "test_correct": encode_digits(predictions == scored.labels)}


def _probe_record(name: str, backbone: torch.nn.Module, *, base: dict[str, Any], profile: Profile,
                  splits: tuple[SplitTensors, SplitTensors], recipe: dict[str, Any], device: torch.device,
                  **extra: Any) -> dict[str, Any]:
    """Fit and score the probe of one available backbone on ``splits``; its record (``extra`` fields, e.g. a
    val probe's ``split`` and ``stored``, right after ``available``)."""
    timer = StageTimer()
    with timer.stage("probe"):
        evaluation = _fit_and_score(backbone, splits, base["seed"])
    return {**base, "available": True, **extra,
            **common_fields(method=base["method"], setting=Setting.ORACLE.value, setup=base["setup"], profile=profile,
                            seed=base["seed"], hparams={"backbone": name}, recipe=recipe),
            **evaluation, **timer.environment(device)}


def _probe_one(name: str, backbone: torch.nn.Module, *, base: dict[str, Any], profile: Profile,
               splits: tuple[SplitTensors, SplitTensors], store: Storage | None,
               claimed: ClaimedTrial | None, split: str,
               device: torch.device) -> dict[str, Any]:
    """The probe of one available backbone: scored on the test split inside its trial, or (``store`` None) on
    ``split`` (val) and never stored in the results storage; its record."""
    recipe = job_recipe(base["method"], profile, {"backbone": name})
    if store is None:
        return _probe_record(name, backbone, base=base, profile=profile, splits=splits, recipe=recipe,
                             device=device, split=split, stored=False)
    attrs = {"method": base["method"], "setting": Setting.ORACLE.value, "setup": base["setup"], "profile": profile.name,
             "seed": base["seed"], "recipe": recipe}
    request = TrialRequest(f"probe/{base['setup']}/{profile.name}", {"backbone": name}, attrs=attrs)
    with trial_for_run(store, request, claimed) as trial:
        record = _probe_record(name, backbone, base=base, profile=profile, splits=splits, recipe=recipe,
                               device=device)
        trial.complete(record)
    return record


def _unavailable(base: dict[str, Any], claimed: ClaimedTrial | None) -> dict[str, Any]:
    """The record of a backbone that cannot be probed; a sweep's claimed trial keeps why, as PRUNED."""
    log(f"probe {base['backbone']}: unavailable ({base['note']})")
    if claimed is not None:
        claimed.set_attr("unavailable", base["note"])
        claimed.prune()
    return {**base, "available": False}


def run_probes(
    setup: str,
    backbones: tuple[str, ...] = PROBE_BACKBONES,
    *,
    seed: int = 0,
    profile: str | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    storage_url: str | None = None,
    claimed: ClaimedTrial | None = None,
    split: str = REPORTED_SPLIT,
) -> list[dict[str, Any]]:
    """Probe each backbone on ``setup``'s target; one stored trial per available backbone.

    Returns one record per backbone: ``{"kind": "probe", "backbone", "available", "note", "accuracy", ...}``
    (no accuracy when the backbone is unavailable, e.g. ImageNet without a local weights file).
    ``claimed``: a trial a sweep worker claimed for the (single) backbone (default: a new trial per backbone).
    ``profile_overrides``: ``{dotted path: value}`` set on the profile (``benchmark.config.overrides``).
    ``split``: the target split the probe is scored on: ``test`` (the default; the only one stored and reported)
    or ``val`` (a synthetic target's validation split, for choosing settings: records carry ``"split": "val"``
    and ``"stored": False``, nothing is written to the results storage, and ``claimed`` is refused).
    """
    if split not in PROBE_SPLITS:
        raise UserError(f"a probe is scored on {' or '.join(PROBE_SPLITS)}, not {split!r}")
    stored = split == REPORTED_SPLIT
    if not stored and claimed is not None:
        raise UserError(f"a probe scored on {split!r} is never stored, so it cannot fill a claimed trial")
    the_setup = get_setup(setup)
    the_profile = resolve_profile(profile or the_setup.profile, profile_overrides)
    ensure_numerics(the_profile.numerics)
    torch_device = resolve_device(device)
    splits = (split_tensors(the_setup.target, "train", the_profile, torch_device),
              split_tensors(the_setup.target, split, the_profile, torch_device))
    store = open_storage(storage_url) if stored else None
    records = []
    for name in backbones:
        frozen = frozen_backbone(name, setup, the_profile, seed, torch_device)
        base = {"kind": "probe", "backbone": name, "method": f"probe:{name}", "setting": Setting.ORACLE.value, "setup": setup,
                "target_dataset": the_setup.target, "profile": the_profile.name, "seed": seed, "note": frozen.note}
        if frozen.module is None:
            records.append(_unavailable(base, claimed))
            continue
        base["artifacts"] = {"built_now": frozen.built_now}  # as a run record's: a sweep counts what it trained
        records.append(_probe_one(name, frozen.module, base=base, profile=the_profile, splits=splits, store=store,
                                  claimed=claimed, split=split, device=torch_device))
        log(f"probe {name}: {records[-1]['accuracy']:.2f}%" + ("" if stored else f" on {split} (not stored)"))
    return records

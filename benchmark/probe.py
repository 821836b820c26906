"""The backbone probe (the CluP paper's Table 3): how good is each frozen backbone for the target task?

A multinomial logistic regression (scikit-learn, on standardised features) is fitted on the frozen backbone's
features of the target **train** split with its ground-truth labels and scored on the target test split.
This uses target labels by design, so every probe record is labelled ``setting = "oracle"``: it measures
representations, it never selects anything for an adaptation method.

Backbones: ``random`` (an untrained network: the floor), ``imagenet`` (a local weights file, when given),
``source`` (the source model's backbone), ``deepclusterv2`` and ``swav`` (pretrained on the unlabelled target
train split). Each probe is one trial in the results storage (study ``probe/<setup>/<profile>``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from benchmark.devices import resolve_device
from benchmark.errors import UserError
from benchmark.evaluation import score_predictions
from benchmark.identity import job_recipe
from benchmark.inference import backbone_features
from benchmark.models import build_backbone
from benchmark.pretrain import get_pretrained_backbone
from benchmark.profiles import Profile, get_profile
from benchmark.progress import log
from benchmark.seeding import derive_seed, seed_everything
from benchmark.setups import get_setup
from benchmark.source import get_source_model, imagenet_weights, split_tensors
from benchmark.storage import TrialRequest, complete, open_storage, trial_for_run
from benchmark.versions import versions
from methods.ssl.base import ssl_names

PROBE_BACKBONES = ("random", "imagenet", "source", "deepclusterv2", "swav")


def linear_probe(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit standardise + multinomial logistic regression (L2, C = 1, lbfgs) on train; score test.

    Returns (the test evaluation record, the (N_test,) predictions).
    """
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    classifier.fit(train_features, train_labels)
    predictions = classifier.predict(test_features)
    return score_predictions(predictions, test_labels).as_record(), predictions


def probe_backbone(name: str, setup: str, profile: Profile, seed: int, device: torch.device) -> tuple[nn.Module | None, str]:
    """The frozen backbone called ``name`` for ``setup``, or (None, why it is missing)."""
    the_setup = get_setup(setup)
    if name == "random":
        seed_everything(derive_seed("probe-random", setup, seed))
        return build_backbone(profile.arch, profile.stem, profile.width)[0].to(device), "untrained network (the floor)"
    if name == "imagenet":
        try:
            weights = imagenet_weights(profile) if profile.imagenet_init else None
        except UserError as error:
            return None, str(error)
        if weights is None:
            return None, f"profile {profile.name!r} has no ImageNet initialisation (width {profile.width}, random init)"
        return build_backbone(profile.arch, profile.stem, profile.width, weights)[0].to(device), f"ImageNet ({weights.name})"
    if name == "source":
        source = get_source_model(the_setup.source, profile, seed, device)
        return source.model.backbone, f"source model artifact {source.path.name}"
    if name in ssl_names():
        pretrained = get_pretrained_backbone(name, the_setup.target, profile, seed, device)
        return pretrained.backbone, f"{name} artifact {pretrained.path.name}"
    raise UserError(f"unknown probe backbone {name!r}; known: {', '.join(PROBE_BACKBONES)}")


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
        backbone, note = probe_backbone(name, setup, the_profile, seed, torch_device)
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

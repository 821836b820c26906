"""The backbone probe (the CluP paper's Table 3): how good is each frozen backbone for the target task?

A multinomial logistic regression (scikit-learn, on standardised features) is fitted on the frozen backbone's
features of the target **train** split with its ground-truth labels and scored on the target test split.
This uses target labels by design, so every probe record is labelled ``setting = "oracle"``: it measures
representations, it never selects anything for an adaptation method.

Scored on **test** (``REPORTED_SPLIT``), a probe is a Table 3 row. Scored on **val** (the synthetic domains'
third split, fresh identities), it is the measurement that chooses protocol settings such as an SSL recipe's
epochs (docs/SSL.md, "Which split chose what"); such a probe is never stored, so no table can read it.

Backbones: ``random`` (an untrained network: the floor), ``imagenet`` (a local weights file, when given),
``source`` (the source model's backbone), and each self-supervised objective of ``methods.ssl.ssl_registry``
(``deepclusterv2``, ``swav``: pretrained on the unlabelled target train split). Each probe is one trial in the
results storage (study ``probe/<setup>/<profile>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile
from benchmark.config.setups import get_setup
from benchmark.services.artifacts import built_now_entry
from benchmark.services.pretrain import get_pretrained_backbone
from benchmark.services.source import get_source_model
from methods.core.models import build_backbone, imagenet_backbone
from methods.core.scores import score_predictions
from methods.core.seeding import derive_seed, seed_everything
from methods.ssl.ssl_registry import ssl_names

#: The probed backbones, in the order probes run: the floor, ImageNet, the source model's, then every SSL objective's
#: (``ssl_names()``: sorted). Part of probe job keys: keep the order.
PROBE_BACKBONES = ("random", "imagenet", "source", *ssl_names())
#: The split every reported probe (Table 3) is scored on.
REPORTED_SPLIT = "test"
#: The splits a probe may be scored on: the reported one, and ``val`` for choosing settings (never stored).
PROBE_SPLITS = (REPORTED_SPLIT, "val")


def linear_probe(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit standardise + multinomial logistic regression (L2, C = 1, lbfgs) on train; score test.

    Returns (the test evaluation record, the (N_test,) predictions).
    """
    # Imported here: scikit-learn costs about 2 s of CPU to import, and every ``run`` process imports this module.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    classifier.fit(train_features, train_labels)
    predictions = classifier.predict(test_features)
    return score_predictions(predictions, test_labels).as_record(), predictions


@dataclass(frozen=True)
class FrozenBackbone:
    """A backbone to probe, or why there is none.

    Attributes:
        module: the network (None: unavailable, e.g. ImageNet without a local weights file).
        note: where it comes from, or why it is missing.
        built_now: ``{artifact folder name: trained by this call}`` for a source model or SSL backbone (empty for
            the others), as a run record's ``artifacts.built_now``.
    """

    module: nn.Module | None
    note: str
    built_now: dict[str, bool] = field(default_factory=dict)


def frozen_backbone(name: str, setup: str, profile: Profile, seed: int, device: torch.device) -> FrozenBackbone:
    """The frozen backbone called ``name`` for ``setup`` (its ``module`` None, with why, when it is missing)."""
    the_setup = get_setup(setup)
    if name == "random":
        seed_everything(derive_seed("probe-random", setup, seed))
        return FrozenBackbone(build_backbone(profile.arch, profile.stem, profile.width)[0].to(device),
                              "untrained network (the floor)")
    if name == "imagenet":
        try:
            backbone, weights = imagenet_backbone(profile)
        except UserError as error:
            return FrozenBackbone(None, str(error))
        return FrozenBackbone(backbone.to(device), f"ImageNet ({weights.name})")
    if name == "source":
        source = get_source_model(the_setup.source, profile, seed, device)
        return FrozenBackbone(source.model.backbone, f"source model artifact {source.path.name}",
                              built_now_entry(source))
    if name in ssl_names():
        pretrained = get_pretrained_backbone(name, the_setup.target, profile, seed, device)
        return FrozenBackbone(pretrained.backbone, f"{name} artifact {pretrained.path.name}",
                              built_now_entry(pretrained))
    raise UserError(f"unknown probe backbone {name!r}; known: {', '.join(PROBE_BACKBONES)}")

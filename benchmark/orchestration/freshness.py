"""Whether a stored run was made on the data prepared here now.

Job keys name what a job is (method, setup, profile, hyperparameters, seed, code version), not the bytes of the
data: a leaderboard regenerates from records on a machine that has no dataset at all. The data a run used is
in its record instead (``record["data"]``: hashes of the source train images and labels, the target train images
and the target test images and labels; docs/PROTOCOL.md, "The run record"). A sweep compares those hashes with
the manifests of the caches prepared here: a run made before a dataset was re-prepared with other images or
labels does not count as done, and is run again (its source model is retrained too: the source artifact key
holds the labels' hash).
"""

from __future__ import annotations

from typing import Any

from benchmark.config.setups import get_setup
from datasets import registry
from datasets.cache import read_manifest
from datasets.errors import DatasetError


def _splits(dataset: str) -> dict[str, Any] | None:
    """The manifest's split entries of ``dataset``'s cache, or None where it is not prepared (or unreadable)."""
    try:
        return read_manifest(registry.cache_dir(dataset))["splits"]
    except DatasetError:
        return None


def current_data(setup: str) -> dict[str, str] | None:
    """The record's ``data`` hashes a run of ``setup`` would have now, or None where a dataset is not prepared
    here (nothing to compare against: stored records are then taken as they are)."""
    chosen = get_setup(setup)
    source, target = _splits(chosen.source), _splits(chosen.target)
    if source is None or target is None:
        return None
    return {
        "source_train_images_sha256": source["train"]["images_sha256"],
        "source_train_labels_sha256": source["train"]["labels_sha256"],
        "target_train_images_sha256": target["train"]["images_sha256"],
        "target_test_images_sha256": target["test"]["images_sha256"],
        "target_test_labels_sha256": target["test"]["labels_sha256"],
    }


def made_on_other_data(record: dict[str, Any], current: dict[str, str] | None) -> bool:
    """True when ``record`` (a run record) names a data hash that differs from ``current``; records without
    ``data`` (probes, older records) and an unknown ``current`` are never judged stale."""
    if current is None:
        return False
    used = record.get("data") or {}
    return any(name in used and used[name] != digest for name, digest in current.items())

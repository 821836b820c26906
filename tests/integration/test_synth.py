"""The synthetic benchmark generator: determinism, shapes, class balance, label noise, cache round trip (train, test
and val; the val split's own checks, the whole files' pins and the renderer's speed bound are in
tests/unit/test_synth_val.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from datasets.cache import load_split, read_manifest, verify_cache
from datasets.labels import NUM_CLASSES
from datasets.synth import (
    DOMAINS,
    DomainSpec,
    generate_split,
    generate_split_with_plan,
    generator_signature,
    write_cache,
)
from datasets.synth.pipeline import PARTNER, annotate, class_counts_for

NAMES = sorted(DOMAINS)


def small(name: str, n_train: int = 300, n_test: int = 100, n_val: int = 50) -> DomainSpec:
    """A reduced-size copy of a registered spec (same generator, same knobs, fewer samples)."""
    return dataclasses.replace(DOMAINS[name], n_train=n_train, n_test=n_test, n_val=n_val, chunk=128)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_identical_arrays(name: str) -> None:
    spec = small(name)
    a_images, a_plan = generate_split_with_plan(spec, "train")
    b_images, b_plan = generate_split_with_plan(spec, "train")
    assert a_images.tobytes() == b_images.tobytes()
    np.testing.assert_array_equal(a_plan.labels, b_plan.labels)


@pytest.mark.parametrize("name", NAMES)
def test_splits_and_seeds_differ(name: str) -> None:
    spec = small(name, n_train=100, n_test=100, n_val=100)
    train, _ = generate_split_with_plan(spec, "train")
    test, _ = generate_split_with_plan(spec, "test")
    val, _ = generate_split_with_plan(spec, "val")
    other, _ = generate_split_with_plan(dataclasses.replace(spec, seed=spec.seed + 1), "train")
    assert not np.array_equal(train, test)
    assert not np.array_equal(val, train) and not np.array_equal(val, test)
    assert not np.array_equal(train, other)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_channels(name: str) -> None:
    spec = small(name, n_train=130, n_test=70, n_val=40)
    for split, n in (("train", 130), ("test", 70), ("val", 40)):
        images, plan = generate_split_with_plan(spec, split)
        assert images.dtype == np.uint8
        assert images.shape == (n, spec.image_size, spec.image_size, spec.channels)
        assert plan.labels.dtype == np.int64 and plan.labels.shape == (n,)
        assert plan.labels.min() >= 0 and plan.labels.max() < NUM_CLASSES
        assert images.std() > 10  # not blank
    assert DOMAINS["synth-lab"].channels == 3 and DOMAINS["synth-wild"].channels == 1
    assert DOMAINS["synth-lab"].image_size == 64 and DOMAINS["synth-wild"].image_size == 48


@pytest.mark.parametrize("name", NAMES)
def test_full_size_splits_are_large_enough(name: str) -> None:
    assert DOMAINS[name].n_train >= 4000 and DOMAINS[name].n_test >= 1000 and DOMAINS[name].n_val >= 1000


@pytest.mark.parametrize("name", NAMES)
def test_every_class_present_and_balance_follows_prior(name: str) -> None:
    from datasets.synth import describe_plan

    spec = DOMAINS[name]
    prior = np.asarray(spec.class_prior) / np.sum(spec.class_prior)
    for split in ("train", "test", "val"):
        plan = describe_plan(spec, split)  # full size, labels only (no rendering)
        clean = np.bincount(plan.clean, minlength=NUM_CLASSES)
        noisy = np.bincount(plan.labels, minlength=NUM_CLASSES)
        assert np.all(noisy > 0) and np.all(clean > 0)
        np.testing.assert_allclose(clean / clean.sum(), prior, atol=1e-3)
        np.testing.assert_allclose(noisy / noisy.sum(), prior, atol=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_label_noise_rate(name: str) -> None:
    from datasets.synth import describe_plan

    spec = DOMAINS[name]
    for split in ("train", "test", "val"):
        plan = describe_plan(spec, split)
        rate = float(np.mean(plan.labels != plan.clean))
        assert plan.flipped == int(np.sum(plan.labels != plan.clean))
        assert abs(rate - spec.label_noise) < 0.005
        flipped = plan.labels != plan.clean
        to_partner = np.mean(plan.labels[flipped] == np.asarray(PARTNER)[plan.clean[flipped]])
        assert to_partner > 0.55  # mostly to the confusable partner


def test_annotate_flips_exactly_and_never_to_the_same_class() -> None:
    clean = np.repeat(np.arange(NUM_CLASSES), 100)
    noisy, flipped = annotate(clean, 0.05, 0.7, np.random.default_rng(0))
    assert flipped == 35 and int(np.sum(noisy != clean)) == 35


def test_class_counts_exact() -> None:
    counts = class_counts_for(DOMAINS["synth-lab"].class_prior, 5000)
    assert counts.sum() == 5000 and np.all(counts > 0)


def test_signature_tracks_the_spec() -> None:
    import datasets.synth as synth

    sig = generator_signature("synth-lab")
    assert sig.startswith(synth.GENERATOR_VERSION + ":")
    assert sig != generator_signature("synth-wild")
    changed = dataclasses.replace(DOMAINS["synth-lab"], label_noise=0.1)
    assert synth.spec_signature(changed) != sig


def test_generate_split_api_matches_plan() -> None:
    images, labels = generate_split("synth-lab", "test")
    spec = DOMAINS["synth-lab"]
    assert images.shape == (spec.n_test, 64, 64, 3) and labels.shape == (spec.n_test,)
    assert labels.dtype == np.int64


def test_write_cache_round_trip(tmp_path, monkeypatch) -> None:
    import datasets.synth as synth

    spec = small("synth-wild", n_train=150, n_test=60, n_val=40)
    monkeypatch.setitem(synth.DOMAINS, "synth-wild", spec)
    out = tmp_path / "synth-wild"
    write_cache("synth-wild", out)
    manifest = read_manifest(out)
    assert manifest["dataset"] == "synth-wild"
    assert manifest["generator"] == synth.spec_signature(spec)
    assert manifest["label_noise"]["rate"] == spec.label_noise
    assert manifest["channels"] == 1 and manifest["image_size"] == 48
    assert set(verify_cache(out)["splits"]) == {"train", "test", "val"}
    for split in ("train", "test", "val"):
        images, plan = generate_split_with_plan(spec, split)
        loaded = load_split(out, split)
        np.testing.assert_array_equal(np.asarray(loaded.images), images)
        np.testing.assert_array_equal(loaded.labels, plan.labels)
        assert manifest["label_noise"][f"{split}_flipped"] == plan.flipped


def test_ensure_all_generates_side_by_side_with_the_bytes_of_ensure(tmp_path, monkeypatch) -> None:
    """Two stale synthetic domains are generated in two forked processes (a cold run's source and target), and the
    caches are byte-identical to those ``ensure`` writes one at a time."""
    import datasets.synth as synth
    from datasets import registry

    for name in ("synth-lab", "synth-wild"):
        monkeypatch.setitem(synth.DOMAINS, name, small(name, n_train=140, n_test=30, n_val=20))
    monkeypatch.setattr(registry.os, "cpu_count", lambda: 2)
    messages: list[str] = []
    monkeypatch.setattr(registry, "log", messages.append)
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "side_by_side"))
    pairs = registry.ensure_all(["synth-lab", "synth-wild", "synth-lab"])
    assert messages == ["generating synth-lab and synth-wild side by side (2 processes)"]
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path / "one_by_one"))
    singles = [registry.ensure("synth-lab"), registry.ensure("synth-wild")]
    assert [path.name for path in pairs] == ["synth-lab", "synth-wild"]
    for pair, single in zip(pairs, singles, strict=True):
        assert pair.parent.parent == tmp_path / "side_by_side"
        verify_cache(pair)
        assert read_manifest(pair)["splits"] == read_manifest(single)["splits"]  # sizes and sha256 of every array


def test_negative_domain_is_synth_lab_in_negative() -> None:
    """synth-lab-negative draws synth-lab's faces (same seed and plan) and only inverts the exposed image."""
    lab, lab_plan = generate_split_with_plan(small("synth-lab", n_train=64), "train")
    negative, negative_plan = generate_split_with_plan(small("synth-lab-negative", n_train=64), "train")
    np.testing.assert_array_equal(lab_plan.labels, negative_plan.labels)
    difference = np.abs(negative.astype(np.int16) - (255 - lab.astype(np.int16)))
    assert difference.max() <= 1  # rounding of v and 1 - v to 8 bits
    assert generator_signature("synth-lab-negative") != generator_signature("synth-lab")

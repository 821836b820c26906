"""The synthetic domains' ``val`` split: fresh identities, train and test unchanged by its arrival, present in the
manifest and verified, and never read by anything that is reported (docs/DATA.md, "The validation split")."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import datasets.synth as synth
from datasets import registry
from datasets.cache import CacheWriter, load_split, read_manifest, verify_cache
from datasets.errors import DatasetError
from datasets.synth import DOMAINS, describe_plan, split_names
from datasets.synth.params import SPLIT_INDEX
from datasets.synth.pipeline import render_chunk
from tests.synth_pins import PINNED_CHUNKS, PINNED_FILES, digest

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(DOMAINS)

def _identity_rows(name: str, split: str) -> set[bytes]:
    """Each sample's whole identity parameter vector (every identity parameter, in sorted key order), as bytes."""
    table = describe_plan(DOMAINS[name], split).identity
    columns = [np.asarray(table[key], dtype=np.float64).reshape(len(table[key]), -1) for key in sorted(table)]
    return {row.tobytes() for row in np.concatenate(columns, axis=1)}


# --- the split itself -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_val_is_a_third_split_of_its_own_stream(name: str) -> None:
    spec = DOMAINS[name]
    assert spec.n_val == 1200 and split_names(spec) == ("train", "test", "val")
    assert SPLIT_INDEX == {"train": 0, "test": 1, "val": 2}  # train and test keep their stream indices
    assert split_names(dataclasses.replace(spec, n_val=0)) == ("train", "test")


@pytest.mark.parametrize("name", NAMES)
def test_val_identities_are_disjoint_from_train_and_test(name: str) -> None:
    val, train, test = (_identity_rows(name, split) for split in ("val", "train", "test"))
    assert len(val) == DOMAINS[name].n_val  # every val sample is a new identity
    assert not val & train and not val & test and not train & test


@pytest.mark.parametrize("name", NAMES)
def test_val_follows_the_prior_and_label_noise(name: str) -> None:
    spec, plan = DOMAINS[name], describe_plan(DOMAINS[name], "val")
    assert plan.flipped == round(spec.label_noise * spec.n_val)
    prior = np.asarray(spec.class_prior) / np.sum(spec.class_prior)
    np.testing.assert_allclose(np.bincount(plan.clean, minlength=7) / spec.n_val, prior, atol=1e-3)


@pytest.mark.parametrize("key", sorted(PINNED_CHUNKS), ids="-".join)
def test_every_split_is_pinned(key: tuple[str, str]) -> None:
    """Labels, identities and the first rendered chunk of each split are the pinned ones (tests/synth_pins.py; the
    whole files are checked by the slow test below, every CPU dispatch setting by tests/integration/test_portable_data.py)."""
    name, split = key
    spec = DOMAINS[name]
    plan = describe_plan(spec, split)
    identity = digest(*(plan.identity[key] for key in sorted(plan.identity)))
    assert (digest(plan.labels), identity, digest(render_chunk(spec, plan, split, 0))) == PINNED_CHUNKS[key]


#: The renderer's speed bound: CPU seconds for a domain's train and test splits (the bound predates val, so a
#: whole cache gets it scaled by its share of images).
SECONDS_FOR_TRAIN_AND_TEST = 30.0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_whole_files_are_pinned_and_generated_within_the_speed_bound(name: str, tmp_path: Path) -> None:
    """One generation of the whole cache serves both checks. The bound counts CPU seconds of this process (the
    renderer is single-threaded numpy), so other work on the machine does not count against it."""
    spec = DOMAINS[name]
    start = time.process_time()
    synth.write_cache(name, tmp_path / name)
    elapsed = time.process_time() - start
    bound = SECONDS_FOR_TRAIN_AND_TEST * (spec.n_train + spec.n_test + spec.n_val) / (spec.n_train + spec.n_test)
    assert elapsed <= bound, f"{name}: {elapsed:.1f} CPU s for the whole cache (bound {bound:.1f} s)"
    splits = read_manifest(tmp_path / name)["splits"]
    for split in ("train", "test", "val"):
        assert (splits[split]["images_sha256"], splits[split]["labels_sha256"]) == PINNED_FILES[name, split]
    assert splits["val"]["n"] == DOMAINS[name].n_val


def test_the_signature_moved_on_so_caches_without_val_are_regenerated() -> None:
    assert synth.GENERATOR_VERSION == "synth-4"
    assert all(synth.generator_signature(name).startswith("synth-4:") for name in NAMES)


# --- the cache: manifest and verification -----------------------------------------------------------------------


@pytest.fixture()
def small_domain(monkeypatch: pytest.MonkeyPatch) -> str:
    """synth-wild at a few samples per split (the same generator and knobs)."""
    spec = dataclasses.replace(DOMAINS["synth-wild"], n_train=40, n_test=30, n_val=20, chunk=32)
    monkeypatch.setitem(synth.DOMAINS, "synth-wild", spec)
    return "synth-wild"


def test_val_is_in_the_manifest_and_verified(small_domain: str, tmp_path: Path) -> None:
    out = tmp_path / small_domain
    synth.write_cache(small_domain, out)
    manifest = read_manifest(out)
    assert set(manifest["splits"]) == {"train", "test", "val"} and manifest["splits"]["val"]["n"] == 20
    assert manifest["split_seeds"]["val"] == [manifest["seed"], 2]
    assert manifest["image_shape"]["val"] == [48, 48, 1] and "val_flipped" in manifest["label_noise"]
    assert len(load_split(out, "val")) == 20
    report = verify_cache(out, dataset=small_domain)
    assert report["splits"]["val"]["n"] == 20
    data = np.load(out / "val_images.npy")
    data[0, 0, 0, 0] ^= 1  # one bit of the val images
    np.save(out / "val_images.npy", data)
    with pytest.raises(DatasetError, match="val_images.npy"):
        verify_cache(out, dataset=small_domain)


def test_data_verify_refuses_a_cache_without_val(small_domain: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """A cache of the synth-1 generator (train and test only) is reported stale by ``data verify`` (and
    regenerated by ``ensure``), never verified as if it were complete."""
    monkeypatch.setenv("FERBENCH_HOME", str(tmp_path))
    out = registry.cache_dir(small_domain)
    synth.write_cache(small_domain, out)
    assert set(registry.verify(small_domain)["splits"]) == {"train", "test", "val"}
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["splits"]["val"], manifest["image_shape"]["val"]
    manifest["generator"] = "synth-1:" + manifest["generator"].split(":")[1]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="regenerate it with `python -m benchmark data prepare synth-wild`"):
        registry.verify(small_domain)
    registry.ensure(small_domain)
    assert "val" in read_manifest(out)["splits"]


def test_a_dataset_without_val_still_works(tmp_path: Path) -> None:
    """Real releases keep their own two splits: a train/test cache is well-formed, verified, and asking it for
    ``val`` is one DatasetError line."""
    out = tmp_path / "rafdb-like"
    with CacheWriter(out) as writer:
        for split in ("train", "test"):
            images, labels = writer.create_split(split, 7, 8, 8, 3)
            labels[:] = np.arange(7)
        writer.manifest.update(dataset="synth-lab", generator="x:0", image_size=8, channels=3, synthetic=True)
    assert set(verify_cache(out)["splits"]) == {"train", "test"}
    with pytest.raises(DatasetError, match="split 'val' not in cache"):
        load_split(out, "val")


# --- nothing reported reads val ---------------------------------------------------------------------------------


def test_no_reported_path_names_the_val_split() -> None:
    """Outside the probe service (which refuses to store a val probe), no module of the harness or the methods
    names the ``val`` split: runs, sweeps, leaderboards, the paper's numbers and the calibration read ``test``."""
    allowed = {REPO / "benchmark/services/linear_probe.py", REPO / "benchmark/cli/run_commands.py"}
    found = []
    for package in ("benchmark", "methods"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value == "val":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def test_the_reported_split_is_test() -> None:
    from benchmark.orchestration import probe_runs as probes
    from benchmark.services import calibration
    from benchmark.services.linear_probe import PROBE_SPLITS, REPORTED_SPLIT

    assert REPORTED_SPLIT == "test" and PROBE_SPLITS == ("test", "val")
    assert inspect.signature(probes.run_probes).parameters["split"].default == "test"
    calls = [node for node in ast.walk(ast.parse(inspect.getsource(calibration)))
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "split_tensors"]
    assert [call.args[1].value for call in calls] == ["test"]


@pytest.fixture()
def fake_probe_inputs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Small random splits and a flattening 'backbone' in place of the cache and the artifacts; the splits asked
    for are recorded."""
    from benchmark.orchestration import probe_runs as probes
    from benchmark.services.source import SplitTensors

    asked: list[str] = []

    def fake_split(dataset: str, split: str, profile, device) -> SplitTensors:
        asked.append(split)
        generator = torch.Generator().manual_seed(len(asked))
        images = torch.randint(0, 256, (70, 3, 4, 4), dtype=torch.uint8, generator=generator)
        return SplitTensors(images, np.arange(70) % 7, "0" * 64, "1" * 64)

    monkeypatch.setattr(probes, "split_tensors", fake_split)
    monkeypatch.setattr(probes, "frozen_backbone", lambda *args, **kwargs: (nn.Flatten(), "flat"))
    return asked


def test_a_val_probe_is_never_stored(fake_probe_inputs: list[str], monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    from benchmark.orchestration import probe_runs as probes
    from benchmark.store.storage import completed_records, open_storage

    url = f"sqlite:///{tmp_path / 'results.db'}"
    [reported] = probes.run_probes("synth", ("random",), profile="tiny", device="cpu", storage_url=url)
    assert fake_probe_inputs == ["train", "test"] and "split" not in reported

    def no_storage(*args, **kwargs):
        raise AssertionError("a val probe opened the results storage")

    monkeypatch.setattr(probes, "open_storage", no_storage)
    [val] = probes.run_probes("synth", ("random",), profile="tiny", device="cpu", storage_url=url, split="val")
    assert fake_probe_inputs[2:] == ["train", "val"]
    assert (val["split"], val["stored"], val["setting"], val["n"]) == ("val", False, "oracle", 70)
    assert [r["backbone"] for r in completed_records(open_storage(url))] == ["random"]  # the test probe only


def test_a_probe_split_must_be_test_or_val(fake_probe_inputs: list[str]) -> None:
    from benchmark.config.errors import UserError
    from benchmark.orchestration import probe_runs as probes

    with pytest.raises(UserError, match="test or val"):
        probes.run_probes("synth", ("random",), profile="tiny", device="cpu", split="train")
    assert fake_probe_inputs == []

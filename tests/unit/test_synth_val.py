"""The synthetic domains' ``val`` split: fresh identities, train and test unchanged by its arrival, present in the
manifest and verified, and never read by anything that is reported (docs/DATA.md, "The validation split")."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
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

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(DOMAINS)

#: SHA-256 of (annotated labels, identity table in sorted key order, rendering chunk 0) of each train and test split.
#: synth-lab's are the synth-1 generator's (before the val split existed): neither the val split (synth-2) nor
#: synth-wild's new corruption (synth-3) may move them. synth-wild's labels and identities are synth-1's too; its
#: pixels are synth-3's (more pose jitter, sensor noise and occluders: docs/DATA.md, "Versions").
PINNED = {
    ("synth-lab", "train"): ("ecc6b0dafe077d96e06d8d1d768756b5a274a0ac7d1b8324e51345918082909a",
                             "e7fab463b02edfca1990af6da89d0c63fb0a9ba675f86b9af0829de91608e1a7",
                             "1cda70001ba748142017a53c6ee39cadc9d81edd39bfcaf3fe6ef350d726f9e1"),
    ("synth-lab", "test"): ("0863e9fb1033c2ee305d3da8a3f6024a13dc7412dfdd5102201ce8495b82f1f7",
                            "cb0d2164baed9e7f245718e1382bed4a4f68eda0092a6210e1ff5e1a7f2e5024",
                            "b8095cab2524e1f8c0c1fe9fefa55ae8b5542ee515f93c0829af1e9bbc451109"),
    ("synth-wild", "train"): ("54a228f1f4f968bea15086238d550f108c28773780f6eb8a4bf3f553b6545a5c",
                              "0be1504c1ffdce7921301c23fe6cbe532ec6892eeebf41785ae023a518adb274",
                              "638d14b12b40c5324624c176b9cecf72fedffb6d9f30954bdcd00396e0ae948d"),
    ("synth-wild", "test"): ("0eb5a4b329cb144554c578d3aa8c3369101f19210d64e7232ce6e6f3c4e31a1f",
                             "bc377b0c839b459049c21c9350570187b03e7f413a3e52092324a24670b9ca79",
                             "ede87bb55f29867afa35d734440870258c7057b7e443e68483674ff10b6c13d8"),
}

#: The whole cache files (``splits.<split>.images_sha256`` / ``labels_sha256`` of the manifest), same versions.
PINNED_FILES = {
    ("synth-lab", "train"): ("74de25c255cdc4b234695a3224b5892b1854322e2a2f2cfb8875e3277e48d205",
                             "5e7c4f43f742c6bef6b34524b0230bdb716e770d2c9f12ce0e84c90f557ca1b2"),
    ("synth-lab", "test"): ("26b7b8271c7149c95a5b4a272bcb380c94466e532e800b1de7c1656571a9db54",
                            "2df6ed44ed1912656f3e19e63856fc5aa07b5d45ba39f0e3e9833d33482c9a69"),
    ("synth-wild", "train"): ("ff287203f089bf7fb6b1c52def9db69ea55d50e211c32be79a3cea73741c686b",
                              "ebe92df5ea9defe221b0473ac801606963681a622aeb7329a4a0f14d79722742"),
    ("synth-wild", "test"): ("740cc153b69d328d8207a584b01e258f2a79dd23b81ee0b1e06696f6dfa77f76",
                             "eb017c7104f114821e605c2f186a3dba1bc63b66a835a90ecbe99a1d180c5722"),
}


def _sha(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


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


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_train_and_test_are_pinned(name: str, split: str) -> None:
    """Labels, identities and the first rendered chunk are the pinned ones (the whole files are checked by the
    slow test below)."""
    spec = DOMAINS[name]
    plan = describe_plan(spec, split)
    identity = _sha(*(plan.identity[key] for key in sorted(plan.identity)))
    assert (_sha(plan.labels), identity, _sha(render_chunk(spec, plan, split, 0))) == PINNED[name, split]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_whole_train_and_test_files_are_pinned(name: str, tmp_path: Path) -> None:
    synth.write_cache(name, tmp_path / name)
    splits = read_manifest(tmp_path / name)["splits"]
    for split in ("train", "test"):
        assert (splits[split]["images_sha256"], splits[split]["labels_sha256"]) == PINNED_FILES[name, split]
    assert splits["val"]["n"] == DOMAINS[name].n_val


def test_the_signature_moved_on_so_caches_without_val_are_regenerated() -> None:
    assert synth.GENERATOR_VERSION == "synth-3"
    assert all(synth.generator_signature(name).startswith("synth-3:") for name in NAMES)


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
    allowed = {REPO / "benchmark/services/probe.py", REPO / "benchmark/cli.py"}
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
    from benchmark.orchestration import probes
    from benchmark.services import calibration
    from benchmark.services.probe import PROBE_SPLITS, REPORTED_SPLIT

    assert REPORTED_SPLIT == "test" and PROBE_SPLITS == ("test", "val")
    assert inspect.signature(probes.run_probes).parameters["split"].default == "test"
    calls = [node for node in ast.walk(ast.parse(inspect.getsource(calibration)))
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "split_tensors"]
    assert [call.args[1].value for call in calls] == ["test"]


@pytest.fixture()
def fake_probe_inputs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Small random splits and a flattening 'backbone' in place of the cache and the artifacts; the splits asked
    for are recorded."""
    from benchmark.orchestration import probes
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
    from benchmark.orchestration import probes
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
    from benchmark.orchestration import probes

    with pytest.raises(UserError, match="test or val"):
        probes.run_probes("synth", ("random",), profile="tiny", device="cpu", split="train")
    assert fake_probe_inputs == []

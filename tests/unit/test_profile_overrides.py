"""Profile overrides (``--set source.epochs=1``, ``--profile-file``): typed, checked, recorded and keyed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchmark.cli import main
from benchmark.config.errors import UserError
from benchmark.config.overrides import read_profile_file
from benchmark.config.profiles import PROFILES, SOURCE_RECIPES
from benchmark.orchestration.experiments import EXPERIMENTS, Job
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.orchestration.run import plan_run
from benchmark.services.pretrain import pretrain_key
from benchmark.services.source import source_key
from methods.ssl.ssl_registry import ssl_recipe

TRAIN = {"images_sha256": "a" * 64, "labels_sha256": "b" * 64}


def test_dotted_overrides_are_typed_and_recorded():
    profile = resolve_profile("paper", {"source.epochs": "1", "ssl.swav.epochs": "200", "precision": "fp32",
                                        "ssl.large_scale": "0.2,1", "channels_last": "false"})
    assert profile.source.epochs == 1 and profile.precision == "fp32" and profile.channels_last is False
    assert ssl_recipe(profile, "swav").epochs == 200 and ssl_recipe(profile, "deepclusterv2").epochs == 1000
    assert ssl_recipe(profile, "swav").prototypes == 5000  # the paper profile's own departure survives
    assert profile.ssl.large_scale == (0.2, 1.0)
    assert profile.overrides == {"channels_last": False, "precision": "fp32", "source.epochs": 1,
                                 "ssl.large_scale": (0.2, 1.0), "ssl.swav.epochs": 200}
    assert profile.as_record()["overrides"]["source.epochs"] == 1
    assert PROFILES["paper"].source.epochs == 100  # the named profile is untouched


def test_a_named_source_recipe_is_applied_before_its_fields():
    profile = resolve_profile("quick", {"source.epochs": 3, "source": "authors"})
    assert profile.source == replace(SOURCE_RECIPES["authors"], epochs=3)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"source.epoch": "1"}, "unknown profile field 'source.epoch'; known: .*source.epochs"),
    ({"ssl.swav.nope": "1"}, "unknown profile field 'ssl.swav.nope'"),
    ({"name": "x"}, "unknown profile field 'name'"),
    ({"source.name": "x"}, "unknown profile field 'source.name'"),
    ({"source.epochs": "1.5"}, "expected an integer"),
    ({"source.epochs": "0"}, "must be at least 1"),
    ({"source.lr": "nan"}, "expected a finite number"),
    ({"precision": "fp16"}, "known values are fp32, bf16, auto"),
    ({"source": "mine"}, "known recipes are shot, authors"),
    ({"channels_last": "maybe"}, "expected true or false"),
    ({"ssl.large_scale": "0.2"}, "expected 2 comma-separated values"),
])
def test_bad_overrides_are_one_clear_error(overrides, message):
    with pytest.raises(UserError, match=message):
        resolve_profile("paper", overrides)


def test_every_key_covers_the_overridden_values():
    paper = PROFILES["paper"]
    short = resolve_profile("paper", {"source.epochs": 1})
    assert source_key("raf", short, 0, TRAIN, None) != source_key("raf", paper, 0, TRAIN, None)
    assert pretrain_key("swav", "fer2013", short, 0, "c" * 64) == pretrain_key("swav", "fer2013", paper, 0, "c" * 64)
    ssl_short = resolve_profile("paper", {"ssl.swav.epochs": 2})
    assert pretrain_key("swav", "fer2013", ssl_short, 0, "c" * 64) != pretrain_key("swav", "fer2013", paper, 0, "c" * 64)
    plain = plan_run("clup", "raf_fer2013", seed=0, profile=None, overrides={})
    shortened = plan_run("clup", "raf_fer2013", seed=0, profile=None, overrides={}, profile_overrides={"source.epochs": 1})
    assert plain.attrs(False)["recipe"] != shortened.attrs(False)["recipe"]


def test_sweep_jobs_carry_the_overrides_through_their_stored_form():
    jobs = EXPERIMENTS["table4"].jobs(("raf_fer2013",), 1, None, {"ssl.swav.epochs": 2, "ssl.large_scale": "0.2,1"})
    plain = {job.row: job.key for job in EXPERIMENTS["table4"].jobs(("raf_fer2013",), 1)}
    for job in jobs:
        assert dict(job.profile_overrides) == {"ssl.large_scale": (0.2, 1.0), "ssl.swav.epochs": 2}
        again = Job.from_attrs(json.loads(json.dumps(job.as_attrs())))  # as a trial's user attribute stores it
        assert again == job and again.key == job.key
        uses_swav = dict(job.overrides).get("backbone", "swav") == "swav"
        assert (job.key != plain[job.row]) == uses_swav  # SSL values key exactly the jobs that use the backbone


def test_a_profile_file_layers_under_set(tmp_path, monkeypatch, capsys):
    path = tmp_path / "short.toml"
    path.write_text('precision = "fp32"\n[source]\nepochs = 2\n[ssl.swav]\nepochs = 3\nprototypes = 50\n')
    assert read_profile_file(path) == {"precision": "fp32", "source.epochs": 2, "ssl.swav.epochs": 3,
                                       "ssl.swav.prototypes": 50}
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\n")
    with pytest.raises(UserError, match="not valid TOML"):
        read_profile_file(bad)
    with pytest.raises(UserError, match="cannot read it"):
        read_profile_file(tmp_path / "missing.toml")


def test_the_cli_refuses_hyperparameters_where_only_profile_fields_apply(capsys):
    assert main(["source", "--dataset", "synth-lab", "--set", "q=50"]) == 2
    assert "takes profile fields only" in capsys.readouterr().err
    assert main(["pretrain", "--ssl", "swav", "--dataset", "synth-wild", "--set", "ssl.swav.bogus=1"]) == 2
    assert "unknown profile field 'ssl.swav.bogus'" in capsys.readouterr().err


def test_method_scaling_is_a_checked_profile_path():
    from methods import registry

    profile = resolve_profile("paper", {"hparams.clup.epochs": "1", "hparams.*.batch_size": "16"})
    clup = registry.resolve_hparams(registry.get("clup"), {}, {}, profile)
    assert clup["epochs"] == 1 and clup["batch_size"] == 16 and clup["backbone"] == "swav"
    assert registry.resolve_hparams(registry.get("shot"), {}, {}, profile)["batch_size"] == 16
    with pytest.raises(UserError, match="declares no hyperparameter 'epoch'"):
        resolve_profile("paper", {"hparams.clup.epoch": "1"})
    with pytest.raises(UserError, match="unknown method 'nope'"):
        resolve_profile("paper", {"hparams.nope.epochs": "1"})
    with pytest.raises(UserError, match=r"hyperparameter epochs='x': expected a int|expected a"):
        registry.resolve_hparams(registry.get("clup"), {}, {}, resolve_profile("paper", {"hparams.clup.epochs": "x"}))


def test_relabelled_source_data_keys_a_new_source_model():
    relabelled = {**TRAIN, "labels_sha256": "c" * 64}
    paper = PROFILES["paper"]
    assert source_key("rafdb", paper, 0, relabelled, None) != source_key("rafdb", paper, 0, TRAIN, None)
    assert source_key("rafdb", paper, 0, relabelled, None)["train_labels_sha256"] == "c" * 64

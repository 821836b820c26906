"""The cost model: what methods and SSL objectives declare (``methods.core.cost``), and how ``bench`` turns it into
seconds (``benchmark.orchestration.cost_model``) without knowing any method by name."""

from __future__ import annotations

import pytest
import torch

from benchmark.config.profiles import PROFILES
from benchmark.config.setups import get_setup
from benchmark.orchestration import bench
from benchmark.orchestration.cost_model import term_seconds
from benchmark.orchestration.stage_timing import KMEANS_K, method_bench_step, stage_measures
from benchmark.services.linear_probe import PROBE_BACKBONES
from benchmark.store.identity import needs_source_model, ssl_objectives
from methods import registry
from methods.api import CostTerm
from methods.ssl.ssl_registry import get_ssl, ssl_recipe


def _stage(name: str, timed: int, seconds: float, stem: str | None = None) -> bench.StageTime:
    return bench.StageTime(name, name, timed, timed, seconds, None, stem)


STAGES = {"source": _stage("source", 8, 0.4, "imagenet"), "clup": _stage("clup", 2, 0.2, "clup"),
          "infer": _stage("infer", 32, 0.064), "kmeans": _stage("kmeans", 28_000, 7.0),
          "ssl": _stage("ssl", 4, 1.0, "clup"), "ssl_kmeans": _stage("ssl_kmeans", 8192, 0.8192)}


def test_a_term_drops_the_last_partial_batch_and_scales_by_factor() -> None:
    assert term_seconds(CostTerm("source", 100, 3, 32), STAGES) == 3 * 96 * 0.05
    assert term_seconds(CostTerm("source", 10, 2, 32), STAGES) == 2 * 10 * 0.05  # fewer than a batch: one step
    assert term_seconds(CostTerm("source", 100, 3, 32, factor=2), STAGES) == 2 * (3 * 96 * 0.05)
    assert term_seconds(CostTerm("infer", 100, 2), STAGES) == 2 * 100 * 0.002


def test_a_step_on_another_stem_costs_the_source_stage_and_kmeans_scales_by_rows_and_clusters() -> None:
    assert term_seconds(CostTerm("clup", 64, 1, 32, stem="clup"), STAGES) == 64 * 0.1
    assert term_seconds(CostTerm("clup", 64, 1, 32, stem="imagenet"), STAGES) == 64 * 0.05
    assert term_seconds(CostTerm("kmeans", 14_000, clusters=2 * KMEANS_K), STAGES) == 7.0 * 0.5 * 2.0


def test_every_builtin_method_declares_its_cost_or_says_it_is_not_modelled() -> None:
    profile, setup = PROFILES["quick"], get_setup("synth")
    for name, cls in registry.available().items():
        hp = registry.resolve_hparams(cls, setup.hparams, {}, profile)
        seconds = bench.job_seconds(name, hp, setup, profile, STAGES)
        assert (seconds is None) == (name == "adacontrast"), name
        assert needs_source_model(name)
    assert bench.job_seconds("probe:swav", {}, setup, profile, STAGES) == (8_000 + 1_200) * 0.002


def test_probes_need_what_they_probe_and_their_backbones_keep_their_order() -> None:
    assert PROBE_BACKBONES == ("random", "imagenet", "source", "deepclusterv2", "swav")
    assert [needs_source_model(f"probe:{b}") for b in PROBE_BACKBONES] == [False, False, True, False, False]
    assert [ssl_objectives(f"probe:{b}", {}) for b in PROBE_BACKBONES] == [(), (), (), ("deepclusterv2",), ("swav",)]


def test_an_objective_declares_its_epoch_work() -> None:
    profile = PROFILES["quick"]
    recipe = ssl_recipe(profile, "deepclusterv2")
    terms = get_ssl("deepclusterv2").pretraining_cost(recipe, 1000)
    assert terms[-1] == CostTerm("ssl_kmeans", 1000, recipe.epochs * 3 * (recipe.kmeans_iterations + 1))
    assert get_ssl("swav").pretraining_cost(ssl_recipe(profile, "swav"), 1000) == [
        CostTerm("ssl", 1000, 16, 128)]
    assert get_ssl("swav").bench_epoch_work(ssl_recipe(profile, "swav"), 10, torch.device("cpu")) is None


def test_the_stages_are_the_harness_s_and_those_methods_declare() -> None:
    assert list(stage_measures()) == ["source", "ssl", "clup", "infer", "kmeans", "ssl_kmeans"]
    assert method_bench_step("shot", PROFILES["tiny"]) is None


@pytest.mark.parametrize("profile", ["tiny", "paper"])
def test_clup_s_timed_step_runs_one_step(profile: str) -> None:
    step = method_bench_step("clup", PROFILES[profile])
    assert step is not None and step.label.startswith("CluP step (") and step.cpu_batch == 2
    assert step.stem == ("clup" if profile == "paper" else "imagenet")  # paper: a SwAV backbone on the SSL stem
    if profile == "tiny":
        training_step = step.build(2, torch.device("cpu"))
        training_step.update(training_step.views())


def test_paper_projections_ask_the_methods_which_to_project() -> None:
    names = [row.name for row in bench.paper_projections(PROFILES["paper"], STAGES)]
    assert "clup on raf_fer2013 (backbone swav)" in names and "shot on afe_expw" in names
    assert not any(name.startswith(("shot_im ", "nrc ")) for name in names)

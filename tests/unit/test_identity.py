"""Job identity covers the profile recipes a job depends on: changing one objective's pretraining recipe gives
new keys to exactly the jobs that use that objective's backbone, leaves SwAV's artifact where it was, and a
trial stored before keys covered recipes answers only the job made with the recipe it was made with."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES
from benchmark.orchestration.experiments import EXPERIMENTS, Job
from benchmark.orchestration.selection import BestTestAccuracy
from benchmark.reporting.cells import search_cell, search_trials
from benchmark.services.pretrain import pretrain_key
from benchmark.store.identity import job_recipe, trial_key
from benchmark.store.stored_trials import StoredTrials
from methods import registry
from methods.ssl.ssl_registry import ssl_recipe

EXPERIMENT_NAMES = ("table1", "table3", "table4", "fig3", "fig4")


def _jobs() -> list[Job]:
    return [job for name in EXPERIMENT_NAMES for job in EXPERIMENTS[name].jobs(("synth",), 2, "quick")]


def _uses(job: Job, ssl: str) -> bool:
    return job.method == f"probe:{ssl}" or dict(job.overrides).get("backbone") == ssl


def _with_overrides(monkeypatch: pytest.MonkeyPatch, overrides: dict) -> None:
    monkeypatch.setitem(PROFILES, "quick", replace(PROFILES["quick"], ssl_overrides=overrides))


@pytest.mark.parametrize("ssl", ["deepclusterv2", "swav"])
def test_an_ssl_recipe_change_rekeys_exactly_the_jobs_that_use_that_backbone(monkeypatch, ssl):
    jobs = _jobs()
    before = [job.key for job in jobs]
    overrides = PROFILES["quick"].ssl_overrides
    epochs = ssl_recipe(PROFILES["quick"], ssl).epochs
    _with_overrides(monkeypatch, {**overrides, ssl: {**overrides.get(ssl, {}), "epochs": epochs + 1}})
    # A job computes its key once: the jobs made now, equal to the earlier ones field by field, have the new keys.
    changed = {job for job, old in zip(_jobs(), before, strict=True) if job.key != old}
    users = {job for job in jobs if _uses(job, ssl)}
    assert users and changed == users


def test_a_source_recipe_change_rekeys_every_run(monkeypatch):
    jobs = _jobs()
    before = [job.key for job in jobs]
    quick = PROFILES["quick"]
    monkeypatch.setitem(PROFILES, "quick", replace(quick, source=replace(quick.source, epochs=quick.source.epochs + 1)))
    jobs = _jobs()  # a job computes its key once: made again, with the changed profile
    assert all(job.key != old for job, old in zip(jobs, before, strict=True))
    assert any(job.kind == "search" for job in jobs)  # search trials too: their key ends with the recipe


def test_a_search_selects_only_among_trials_made_with_its_current_recipe(monkeypatch):
    search = EXPERIMENTS["table1"].searches[0]
    old_key = search.job("table1", "synth", 0, "quick").key
    quick = PROFILES["quick"]
    monkeypatch.setitem(PROFILES, "quick", replace(quick, source=replace(quick.source, epochs=quick.source.epochs + 1)))
    new = search.job("table1", "synth", 0, "quick")
    assert old_key.startswith(f"{new.study_name}#0@") and old_key != new.key
    stale, current = {"seed": 0, "accuracy": 90.0}, {"seed": 0, "accuracy": 60.0}
    stored = StoredTrials({}, {new.study_name: [(0.9, stale, old_key), (0.6, current, new.key)]}, (0,))
    assert search_trials(search, "synth", 0, stored, "quick") == [current]
    assert search_cell(search, BestTestAccuracy(), "synth", stored, "quick").records == [current]


def test_an_override_for_one_objective_leaves_the_other_objectives_artifact_key(monkeypatch):
    quick = PROFILES["quick"]
    plain = replace(quick, ssl_overrides={"swav": quick.ssl_overrides["swav"]})
    tuned = replace(quick, ssl_overrides={**plain.ssl_overrides, "deepclusterv2": {"epochs": 99}})
    assert pretrain_key("swav", "synth-wild", plain, 0, "sha") == pretrain_key("swav", "synth-wild", tuned, 0, "sha")
    assert pretrain_key("deepclusterv2", "synth-wild", plain, 0, "sha") != pretrain_key("deepclusterv2", "synth-wild", tuned, 0, "sha")
    assert ssl_recipe(tuned, "deepclusterv2").epochs == 99 and ssl_recipe(tuned, "swav") == ssl_recipe(quick, "swav")


def test_a_trial_stored_before_recipes_were_keyed_answers_no_job():
    job = next(job for job in _jobs() if job.kind == "run")
    attrs = {"job": job.as_attrs(), "job_key": "0123456789abcdef", "method": job.method, "setup": job.setup,
             "profile": job.profile, "seed": job.seed, "hparams": job.hparams(), "record": {"accuracy": 50.0}}
    assert trial_key(attrs) is None  # no recipe: it answers no job, so a sweep runs the job again
    assert trial_key({**attrs, "recipe": job.recipe, "job_key": job.key}) == job.key


def test_a_trial_made_now_answers_its_job_whether_a_sweep_or_the_command_line_made_it():
    job = next(job for job in _jobs() if _uses(job, "deepclusterv2") and job.kind == "run")
    cli_attrs = {"method": job.method, "setup": job.setup, "profile": job.profile, "seed": job.seed,
                 "hparams": job.hparams(), "embedding": job.embedding,
                 "recipe": job_recipe(job.method, PROFILES[job.profile], job.hparams())}
    assert trial_key(cli_attrs) == job.key
    assert trial_key({"job": job.as_attrs(), "job_key": job.key, "recipe": job.recipe}) == job.key


def test_the_pretraining_service_serves_only_the_objectives_a_method_declares():
    from benchmark.orchestration.run import _ssl_service, plan_run

    plan = plan_run("clup", "synth", seed=0, profile="tiny", overrides={"backbone": "swav"})
    service = _ssl_service(plan, torch.device("cpu"), {})
    with pytest.raises(UserError, match="does not declare"):
        service("deepclusterv2")
    clup = registry.get("clup")
    assert clup.ssl_objectives({"backbone": "deepclusterv2"}) == ("deepclusterv2",)
    assert clup.ssl_objectives({"backbone": "source"}) == () and registry.get("shot").ssl_objectives({}) == ()

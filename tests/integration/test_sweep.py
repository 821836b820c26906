"""Sweeps on one storage: concurrent workers run each job exactly once; a killed sweep resumes and finishes;
completed runs and artifacts are reused; a search runs once and every selection rule picks from its trials; the SLURM path runs through
submitit's local executor. All at the built-in ``tiny`` profile on ``synth``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from benchmark.orchestration.experiments import EXPERIMENTS, Experiment, Row, Search
from benchmark.orchestration.sweep import survey, sweep, unique_jobs
from benchmark.orchestration.selection import BestTestAccuracy, BestValidator
from benchmark.reporting.cells import search_trials, table_lines
from benchmark.store.storage import open_storage
from benchmark.store.stored_trials import StoredTrials
from benchmark.store.study_scan import TrialStatus
from benchmark.store.trial_runs import suggest
from methods import registry

ROOT = Path(__file__).resolve().parents[2]

#: 3 thresholds x 2 scores x 2 seeds = 12 jobs of CluP (source backbone: no SSL pretraining to wait for), 3 per worker.
GRID = Experiment(
    "test_grid",
    "a 12-job grid",
    rows=tuple(Row(f"{s} {q}", "clup", {"score": s, "q": q}) for s in ("purity", "confidence")
               for q in (0.5, 0.7, 0.9)),
)
SMALL = Experiment("test_small", "three jobs", rows=(Row("SHOT-IM", "shot_im"), Row("SHOT", "shot"), Row("Source", "source_only")))
ONE = Experiment("test_one", "one job", rows=(Row("Source", "source_only"),))


def _completed_keys(url: str, experiment: Experiment, seeds: int) -> Counter:
    jobs = experiment.jobs(("synth",), seeds, "tiny")
    found = survey(open_storage(url), jobs)
    return Counter({key: sum(t.status is TrialStatus.COMPLETE for t in trials) for key, trials in found.items()})


@pytest.mark.slow(seconds=60)
def test_four_workers_finish_a_12_job_grid_with_exactly_12_completed_trials(storage):
    report = sweep(GRID, ("synth",), seeds=2, profile="tiny", workers=4, storage_url=storage, device="cpu")
    assert report.jobs == 12 and report.ran == 12 and not report.failed
    counts = _completed_keys(storage, GRID, 2)
    assert len(counts) == 12 and set(counts.values()) == {1}
    study = optuna.load_study(study_name="run/clup/synth/tiny", storage=open_storage(storage))
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    assert states == {TrialState.COMPLETE: 12}  # no duplicate, no leftover WAITING or RUNNING trial
    # One source model per seed, each trained at most once (earlier tests of the session may have built it).
    assert len(report.artifacts_built) == 2 and max(report.artifacts_built.values()) <= 1
    again = sweep(GRID, ("synth",), seeds=2, profile="tiny", workers=4, storage_url=storage, device="cpu")
    assert again.done_before == 12 and again.ran == 0


_KILLED_SWEEP = textwrap.dedent(
    """
    import sys
    from tests.integration.test_sweep import SMALL
    from benchmark.orchestration.sweep import sweep
    sweep(SMALL, ("synth",), seeds=1, profile="tiny", storage_url=sys.argv[1], device="cpu")
    """
)


def test_a_sweep_counts_the_artifacts_its_probe_jobs_trained(storage):
    # Table 3's probes are where a full sweep trains its source models and SSL backbones first: the summary must
    # count them (it once read run records only, and said "trained by 0" of artifacts its probes had just trained).
    probe = Experiment("test_probe", "one probe", rows=(Row("Source", "probe:source"),))
    report = sweep(probe, ("synth",), seeds=1, profile="tiny", storage_url=storage, device="cpu")
    found = survey(open_storage(storage), probe.jobs(("synth",), 1, "tiny"))
    [record] = [trial.attrs["record"] for trials in found.values() for trial in trials]
    [(name, built)] = record["artifacts"]["built_now"].items()
    assert name in record["note"] and report.artifacts_built == {name: int(built)}


def test_a_killed_sweep_resumes_and_leaves_one_completed_trial_per_job(storage, monkeypatch):
    monkeypatch.setenv("FERBENCH_HEARTBEAT_SECONDS", "1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SWEEP, storage], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 240
        while sum(_completed_keys(storage, SMALL, 1).values()) < 1:
            assert child.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.5)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert sum(_completed_keys(storage, SMALL, 1).values()) < 3
    report = sweep(SMALL, ("synth",), seeds=1, profile="tiny", storage_url=storage, device="cpu")
    assert report.done_before >= 1 and report.done_before + report.ran == 3 and not report.failed
    counts = _completed_keys(storage, SMALL, 1)
    assert len(counts) == 3 and set(counts.values()) == {1}
    # Two experiments swept together share their common job (ONE's only row is SMALL's Source row).
    both = sweep([SMALL, ONE], ("synth",), seeds=1, profile="tiny", storage_url=storage, device="cpu")
    assert (both.experiment, both.jobs, both.done_before, both.ran) == ("test_small+test_one", 3, 3, 0)


def test_experiments_swept_together_run_each_shared_job_once():
    # On synth, Q defaults to 0.8: table1's CluP (SwAV), table4's SwAV + purity and fig4's purity Q=0.8 are one
    # run per seed, and so are table4's SwAV + confidence and fig4's confidence Q=0.8: a table1 + table4 + fig4
    # sweep has 3 jobs per seed fewer than its three parts.
    parts = [EXPERIMENTS[name].jobs(("synth",), 3) for name in ("table1", "table4", "fig4")]
    together = unique_jobs(job for jobs in parts for job in jobs)
    assert len(together) == sum(map(len, parts)) - 3 * 3
    assert len({job.key for job in together}) == len(together)
    at_default_q = Counter(dict(job.overrides)["score"] for job in together if job.method == "clup"
                           and dict(job.overrides)["backbone"] == "swav" and dict(job.overrides).get("q", 0.8) == 0.8)
    assert at_default_q == {"purity": 3, "confidence": 3}  # one per seed each


def test_one_search_serves_every_selection_rule_from_the_same_trials_drawn_without_looking_at_results(storage):
    search = Search("SHOT", "shot", ("lr", "cls_par"), {"tiny": 3})
    experiment = Experiment("test_search", "searches", rows=(), searches=(search,))
    assert len(experiment.jobs(("synth",), 1, "tiny")) == 3  # one job per trial: no search per rule
    report = sweep(experiment, ("synth",), seeds=1, profile="tiny", storage_url=storage, device="cpu")
    assert report.jobs == 3 and report.ran == 3
    stored = StoredTrials.load(open_storage(storage))
    assert [name for name in stored.by_study if name.startswith("search/")] == ["search/shot/synth/tiny/seed0"]
    trials = search_trials(search, "synth", 0, stored, "tiny")
    ids = {(record["trial"]["study"], record["trial"]["number"]) for record in trials}
    assert len(ids) == 3

    # Every line of the search (each validator's, the oracle's) picks one of the same trial ids.
    lines = [line for line in table_lines(experiment, ("synth",), stored, "tiny") if line.search is search]
    assert [line.rule for line in lines] == list(search.rules) and search.rules[-1].oracle
    picks = {line.rule: line.cells["synth"].records[0] for line in lines}
    assert all((pick["trial"]["study"], pick["trial"]["number"]) in ids for pick in picks.values())
    assert picks[BestTestAccuracy()]["accuracy"] == max(record["accuracy"] for record in trials)
    assert picks[BestValidator("im")]["validators"]["im"] == max(record["validators"]["im"] for record in trials)

    # Each slot's values are what a random sampler seeded with the slot's seed draws in an empty study: they
    # depend on no stored result (so no rule, honest or oracle, steered the search).
    spec = registry.get("shot").hparams_spec
    for slot in range(3):
        job = search.job("test_search", "synth", 0, "tiny", slot)
        fresh = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=job.sampler_seed)).ask()
        drawn = {name: suggest(fresh, name, spec[name].distribution) for name in search.searched}
        assert {name: stored.by_key[job.key]["hparams"][name] for name in search.searched} == drawn


def test_the_slurm_launcher_path_runs_through_submitits_local_executor(storage):
    report = sweep(ONE, ("synth",), seeds=2, profile="tiny", workers=2, storage_url=storage, launcher="submitit-local",
                   device="cpu")
    assert report.ran == 2 and not report.failed
    assert set(_completed_keys(storage, ONE, 2).values()) == {1}

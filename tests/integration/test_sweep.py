"""Sweeps on one storage: concurrent workers run each job exactly once; a killed sweep resumes and finishes;
completed runs and artifacts are reused; searches select by their objective; the SLURM path runs through
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
from benchmark.reporting.cells import search_cell
from benchmark.store.storage import open_storage
from benchmark.store.stored_trials import StoredTrials
from benchmark.store.study_scan import TrialStatus

ROOT = Path(__file__).resolve().parents[2]

#: 6 thresholds x 2 scores x 2 seeds = 24 jobs of CluP (source backbone: no SSL pretraining to wait for).
GRID = Experiment(
    "test_grid",
    "a 24-job grid",
    rows=tuple(Row(f"{s} {q}", "clup", {"score": s, "q": q}) for s in ("purity", "confidence")
               for q in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
)
SMALL = Experiment("test_small", "three jobs", rows=(Row("SHOT-IM", "shot_im"), Row("SHOT", "shot"), Row("Source", "source_only")))
ONE = Experiment("test_one", "one job", rows=(Row("Source", "source_only"),))


def _completed_keys(url: str, experiment: Experiment, seeds: int) -> Counter:
    jobs = experiment.jobs(("synth",), seeds, "tiny")
    found = survey(open_storage(url), jobs)
    return Counter({key: sum(t.status is TrialStatus.COMPLETE for t in trials) for key, trials in found.items()})


@pytest.mark.slow(seconds=80)
def test_four_workers_finish_a_24_job_grid_with_exactly_24_completed_trials(storage):
    report = sweep(GRID, ("synth",), seeds=2, profile="tiny", workers=4, storage_url=storage, device="cpu")
    assert report.jobs == 24 and report.ran == 24 and not report.failed
    counts = _completed_keys(storage, GRID, 2)
    assert len(counts) == 24 and set(counts.values()) == {1}
    study = optuna.load_study(study_name="run/clup/synth/tiny", storage=open_storage(storage))
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    assert states == {TrialState.COMPLETE: 24}  # no duplicate, no leftover WAITING or RUNNING trial
    # One source model per seed, each trained at most once (earlier tests of the session may have built it).
    assert len(report.artifacts_built) == 2 and max(report.artifacts_built.values()) <= 1
    again = sweep(GRID, ("synth",), seeds=2, profile="tiny", workers=4, storage_url=storage, device="cpu")
    assert again.done_before == 24 and again.ran == 0


_KILLED_SWEEP = textwrap.dedent(
    """
    import sys
    from tests.integration.test_sweep import SMALL
    from benchmark.orchestration.sweep import sweep
    sweep(SMALL, ("synth",), seeds=1, profile="tiny", storage_url=sys.argv[1], device="cpu")
    """
)


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


def test_a_search_reports_its_objective_and_the_leaderboard_selects_by_it(storage):
    honest = Search("SHOT", "shot", "validator:im", ("lr", "cls_par"), {"tiny": 2})
    oracle = Search("SHOT", "shot", "accuracy", ("lr", "cls_par"), {"tiny": 2})
    experiment = Experiment("test_search", "searches", rows=(), searches=(honest, oracle))
    report = sweep(experiment, ("synth",), seeds=1, profile="tiny", storage_url=storage, device="cpu")
    assert report.jobs == 4 and report.ran == 4
    stored = StoredTrials.load(open_storage(storage))
    for search in (honest, oracle):
        trials = [(value, record) for value, record, _ in stored.by_study[f"search/{search.objective}/shot/synth/tiny/seed0"]]
        assert len(trials) == 2
        for value, record in trials:
            expected = record["accuracy"] if search.oracle else record["validators"]["im"]
            assert value == pytest.approx(expected)
        assert len({record["hparams"]["lr"] for _, record in trials}) == 2  # each slot drew its own values
        chosen = search_cell(search, "synth", stored, "tiny").records[0]
        assert chosen is max(trials, key=lambda pair: pair[0])[1]


def test_the_slurm_launcher_path_runs_through_submitits_local_executor(storage):
    report = sweep(ONE, ("synth",), seeds=2, profile="tiny", workers=2, storage_url=storage, launcher="submitit-local",
                   device="cpu")
    assert report.ran == 2 and not report.failed
    assert set(_completed_keys(storage, ONE, 2).values()) == {1}

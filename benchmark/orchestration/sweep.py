"""``sweep``: run every missing job of an experiment on one results storage, with any number of workers.

How work is shared, with Optuna as the only scheduler:

1. The coordinator surveys the storage: each job's key (``benchmark.orchestration.experiments.Job.key``) is matched
   against the stored trials of its study. A COMPLETE trial (or PRUNED: a probe that cannot run, e.g.
   ImageNet without weights) means done; WAITING or RUNNING with a live heartbeat means someone has it;
   nothing, or only FAIL trials (stale heartbeats are failed first), means it must run.
2. Missing jobs are enqueued as WAITING trials (their params fixed, the job in a user attribute).
3. Workers (this process, ``--workers N`` local processes, or SLURM jobs through submitit: ``launchers.LAUNCHERS``)
   claim WAITING trials one by one (Optuna's atomic WAITING -> RUNNING transition: ``benchmark.store.work_queue``),
   run them inside that very trial, and stop when none is left.
4. The coordinator surveys again: failed jobs are retried (up to ``max_retries`` failures each); jobs another
   process is still running are waited for. It returns when every job is done or out of retries.

Grid points are enqueued as fixed trials rather than drawn by Optuna's ``GridSampler``: with several workers
GridSampler can hand the same point to two of them (Optuna's documentation says so), and a sweep must leave
exactly one completed trial per job. Searches draw their hyperparameters with a seeded ``TPESampler`` when
a worker claims the trial. Killing a sweep loses nothing: completed trials stay, the killed one is FAIL
(or stale, then failed), and the next ``sweep`` runs only what is missing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.options import check_minimum
from benchmark.orchestration.experiments import Experiment, Job, get_experiments
from benchmark.orchestration.freshness import current_data, made_on_other_data
from benchmark.orchestration.launchers import LAUNCHERS, Launch, WorkQueue
from benchmark.store.storage import default_storage_url, heartbeat_seconds, open_storage
from benchmark.store.study_scan import Storage, StoredTrial, TrialStatus
from benchmark.store.work_queue import enqueue, trials_by_key, withdraw
from datasets.progress import log

#: Each job's stored trials, by job key (``survey``).
Survey = dict[str, list[StoredTrial]]


@dataclass
class SweepReport:
    """What a sweep did.

    Attributes:
        experiment: its name.
        jobs: number of jobs in the grid (rows x setups x seeds + search trials).
        done_before: jobs already complete when it started.
        ran: jobs completed by this sweep.
        failed: jobs that failed more than ``max_retries`` times (their last error).
        artifacts_built: per artifact (source model, SSL backbone), how many of the experiment's jobs (runs and
            probes) trained it (1 = trained once and reused; 0 = it existed before).
    """

    experiment: str
    jobs: int
    done_before: int
    ran: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    artifacts_built: dict[str, int] = field(default_factory=dict)


def survey(storage: Storage, jobs: list[Job]) -> Survey:
    """Stored trials of each job, by job key (stale trials failed first). A completed run made on other data
    than the caches prepared here now (``benchmark.orchestration.freshness``) is left out: its job runs again."""
    setup_of = {job.key: job.setup for job in jobs}
    data = {setup: current_data(setup) for setup in sorted(set(setup_of.values()))}
    found = trials_by_key(storage, {job.study_name for job in jobs}, setup_of)
    outdated = 0
    for key, trials in found.items():
        fresh = [t for t in trials if t.status is not TrialStatus.COMPLETE
                 or not made_on_other_data(t.attrs.get("record", {}), data[setup_of[key]])]
        outdated += len(trials) - len(fresh)
        found[key] = fresh
    if outdated:
        log(f"note: {outdated} stored run(s) were made on data that has been prepared again since (other images "
            "or labels): they do not count as done")
    return found


def unique_jobs(jobs: Iterable[Job]) -> list[Job]:
    """The first job of each key, in order (two experiments, or two rows, may ask for the very same run:
    table4's SwAV + purity is fig4's purity at the default Q, and table1's CluP (SwAV) too)."""
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.key, job)
    return list(seen.values())


def _artifacts_built(trials: Survey) -> dict[str, int]:
    """How many completed jobs of the sweep (runs and probes) trained each artifact (from the records'
    ``artifacts.built_now``)."""
    built: Counter[str] = Counter()
    for found in trials.values():
        for trial in found:
            record = trial.attrs.get("record", {}) if trial.status is TrialStatus.COMPLETE else {}
            for name, now in record.get("artifacts", {}).get("built_now", {}).items():
                built[name] += int(bool(now))
                built.setdefault(name, 0)
    return dict(built)


def _done(jobs: list[Job], trials: Survey) -> int:
    """How many of ``jobs`` are done (a COMPLETE or PRUNED trial)."""
    return sum(any(t.status.done for t in trials[job.key]) for job in jobs)


@dataclass
class _Triage:
    """A survey read for the next round: jobs to enqueue, jobs someone has, jobs out of retries (last error)."""

    pending: list[Job] = field(default_factory=list)
    active: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def _triage(jobs: list[Job], trials: Survey, max_retries: int) -> _Triage:
    """Sort the jobs not done: WAITING or RUNNING somewhere, failed more than ``max_retries`` times, or to run."""
    triage = _Triage()
    for job in jobs:
        states = [t.status for t in trials[job.key]]
        if any(s.done for s in states):
            continue
        if any(s.active for s in states):
            triage.active += 1
        elif states.count(TrialStatus.FAIL) > max_retries:
            triage.failed[job.key] = next(t.attrs.get("error", "?") for t in reversed(trials[job.key]))
        else:
            triage.pending.append(job)
    return triage


def _run_missing(
    storage: Storage, jobs: list[Job], trials: Survey, *, queue: WorkQueue, launch: Launch,
    max_retries: int, report: SweepReport,
) -> Survey:
    """Enqueue and run the jobs not done, round after round (failures retried, others' trials waited for),
    until each is done or out of retries (into ``report.failed``); returns the last survey."""
    while True:
        triage = _triage(jobs, trials, max_retries)
        report.failed.update(triage.failed)
        if triage.pending:
            enqueue(storage, triage.pending)
        elif not triage.active:
            return trials
        # Trials to claim: those just enqueued plus any left WAITING (by a sweep killed before its workers ran).
        waiting = len(triage.pending) + sum(t.status is TrialStatus.WAITING for found in trials.values() for t in found)
        if waiting:
            log(f"sweep {report.experiment}: {waiting} job(s) to run with {launch.workers} {launch.launcher} worker(s)")
            try:
                launch.start(queue)
            except Exception as error:  # noqa: BLE001 - re-raised: a refused launch leaves no trial WAITING
                _withdraw(storage, jobs, f"the launch failed: {' '.join(str(error).split()) or type(error).__name__}")
                raise
        else:
            time.sleep(heartbeat_seconds())  # trials another process runs: wait for them to finish or go stale
        trials = survey(storage, jobs)


def _withdraw(storage: Storage, jobs: list[Job], error: str) -> None:
    """Fail the WAITING trials of ``jobs`` with ``error``: no worker will claim them (the next sweep retries)."""
    withdraw(storage, (trial for found in survey(storage, jobs).values() for trial in found), error)


def sweep(
    experiment: str | Experiment | Sequence[str | Experiment],
    setups: tuple[str, ...],
    *,
    seeds: int = 1,
    profile: str | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    workers: int = 1,
    storage_url: str | None = None,
    launcher: str = "local",
    device: str = "auto",
    max_retries: int = 2,
    launcher_options: dict[str, Any] | None = None,
) -> SweepReport:
    """Run every missing job of ``experiment`` on ``setups`` for seeds ``0..seeds-1``, each in its own trial of
    the results storage (see the module doc), and report what was done.

    Args:
        experiment: a name, an ``Experiment``, or several (their jobs together, each job once however many
            experiments share it).
        setups: setup names; seeds: how many seeds (``0..seeds-1``).
        profile: profile name (default: each setup's); profile_overrides: ``{dotted path: value}`` applied to
            every job's profile.
        workers: how many workers the launcher starts; device: ``auto``, ``cpu`` or ``cuda[:N]``.
        storage_url: results storage URL (default ``default_storage_url()``).
        launcher: a name in ``launchers.LAUNCHERS``: ``local``, ``slurm`` or ``submitit-local`` (submitit's local
            executor: the SLURM path on one machine, for tests); launcher_options: submitit's executor parameters.
        max_retries: failures a job may have before the sweep gives up on it (``SweepReport.failed``).
    """
    check_minimum("workers", workers)
    check_minimum("max_retries", max_retries)
    if launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher {launcher!r}; known: local, slurm")
    launch = Launch(launcher, workers, device, launcher_options)
    launch.check()  # before anything is enqueued: a refused launch leaves no trial WAITING
    resolved = get_experiments(experiment)
    if not resolved:
        raise UserError("--experiment names no experiment")
    jobs = unique_jobs(job for e in resolved for job in e.jobs(setups, seeds, profile, profile_overrides))
    storage_url = storage_url or default_storage_url()
    if launcher == "slurm" and storage_url.startswith("sqlite"):
        log("warning: SQLite on a cluster's shared file system is fragile; prefer a PostgreSQL --storage URL")
    storage = open_storage(storage_url)
    trials = survey(storage, jobs)
    report = SweepReport("+".join(e.name for e in resolved), len(jobs), _done(jobs, trials))
    log(f"sweep {report.experiment}: {len(jobs)} jobs on {', '.join(setups)}; {report.done_before} already done")
    trials = _run_missing(storage, jobs, trials, queue=WorkQueue.of(storage_url, jobs), max_retries=max_retries,
                          launch=launch, report=report)
    report.ran = _done(jobs, trials) - report.done_before
    report.artifacts_built = _artifacts_built(trials)
    return report

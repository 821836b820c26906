"""``sweep``: run every missing job of an experiment on one results storage, with any number of workers.

How work is shared, with Optuna as the only scheduler:

1. The coordinator surveys the storage: each job's key (``benchmark.orchestration.experiments.Job.key``) is matched
   against the stored trials of its study. A COMPLETE trial (or PRUNED: a probe that cannot run, e.g.
   ImageNet without weights) means done; WAITING or RUNNING with a live heartbeat means someone has it;
   nothing, or only FAIL trials (stale heartbeats are failed first), means it must run.
2. Missing jobs are enqueued as WAITING trials (their params fixed, the job in a user attribute).
3. Workers (this process, ``--workers N`` local processes, or SLURM jobs through submitit) claim WAITING
   trials one by one (Optuna's atomic WAITING -> RUNNING transition, ``optuna_adapter.claim_waiting``;
   ``storage.open_storage`` makes it atomic on SQLite too), run them inside that very trial, and stop when none is left.
4. The coordinator surveys again: failed jobs are retried (up to ``max_retries`` failures each); jobs another
   process is still running are waited for. It returns when every job is done or out of retries.

Grid points are enqueued as fixed trials rather than drawn by Optuna's ``GridSampler``: with several workers
GridSampler can hand the same point to two of them (Optuna's documentation says so), and a sweep must leave
exactly one completed trial per job. Searches draw their hyperparameters with a seeded ``TPESampler`` when
a worker claims the trial. Killing a sweep loses nothing: completed trials stay, the killed one is FAIL
(or stale, then failed), and the next ``sweep`` runs only what is missing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from benchmark.config.errors import UserError, interrupt_on_sigterm
from benchmark.config.options import check_minimum
from benchmark.orchestration.experiments import Experiment, Job, get_experiment
from benchmark.orchestration.freshness import current_data, made_on_other_data
from benchmark.store.identity import trial_key
from benchmark.store.optuna_adapter import claim_waiting, fail_waiting, live_trial, record_heartbeat, stored_trial
from benchmark.store.storage import default_storage_url, fixed_params, heartbeat_seconds, open_storage, suggest
from datasets.progress import disable_bars, log
from datasets.registry import home
from methods import registry

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE_STATES = (TrialState.WAITING, TrialState.RUNNING)
LAUNCHERS = ("local", "slurm", "submitit-local")

#: A claimed job: its study, its (RUNNING) trial, and the job.
Claimed = tuple[optuna.Study, optuna.Trial, Job]
#: Each job's stored trials, by job key (``survey``).
Survey = dict[str, list[FrozenTrial]]


@dataclass
class SweepReport:
    """What a sweep did.

    Attributes:
        experiment: its name.
        jobs: number of jobs in the grid (rows x setups x seeds + search trials).
        done_before: jobs already complete when it started.
        ran: jobs completed by this sweep.
        failed: jobs that failed more than ``max_retries`` times (their last error).
        artifacts_built: per artifact (source model, SSL backbone), how many of the experiment's runs
            trained it (1 = trained once and reused; 0 = it existed before).
    """

    experiment: str
    jobs: int
    done_before: int
    ran: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    artifacts_built: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkQueue:
    """What a sweep's workers take: the WAITING trials of ``study_names`` whose job key is in ``keys``, on the
    storage at ``storage_url`` (a URL, so that worker processes and cluster jobs open it themselves)."""

    storage_url: str
    study_names: tuple[str, ...]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, storage_url: str, jobs: Iterable[Job]) -> WorkQueue:
        jobs = list(jobs)
        return cls(storage_url, tuple(sorted({job.study_name for job in jobs})), tuple(sorted({job.key for job in jobs})))


def _studies(storage: optuna.storages.RDBStorage, names: set[str]) -> dict[str, optuna.Study]:
    """Each study by name, created if missing, with stale RUNNING trials failed first."""
    studies = {}
    for name in sorted(names):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        optuna.storages.fail_stale_trials(study)
        studies[name] = study
    return studies


def survey(storage: optuna.storages.RDBStorage, jobs: list[Job]) -> Survey:
    """Stored trials of each job, by job key (stale trials failed first). A completed run made on other data
    than the caches prepared here now (``benchmark.orchestration.freshness``) is left out: its job runs again."""
    setup_of = {job.key: job.setup for job in jobs}
    data = {setup: current_data(setup) for setup in sorted(set(setup_of.values()))}
    found: Survey = {key: [] for key in setup_of}
    outdated = 0
    for study in _studies(storage, {job.study_name for job in jobs}).values():
        for trial in study.get_trials(deepcopy=False):
            key = trial_key(trial.user_attrs)
            if key not in setup_of:
                continue
            if trial.state == TrialState.COMPLETE and made_on_other_data(trial.user_attrs.get("record", {}),
                                                                        data[setup_of[key]]):
                outdated += 1
                continue
            found[key].append(trial)
    if outdated:
        log(f"note: {outdated} stored run(s) were made on data that has been prepared again since (other images "
            "or labels): they do not count as done")
    return found


def enqueue(storage: optuna.storages.RDBStorage, jobs: list[Job]) -> None:
    """Add one WAITING trial per job: the job in user attributes, a run's hyperparameters as fixed params."""
    studies = _studies(storage, {job.study_name for job in jobs})
    for job in jobs:
        attrs: dict[str, Any] = {"job": job.as_attrs(), "job_key": job.key, "recipe": job.recipe}
        params: dict[str, Any] = {}
        if job.kind in ("run", "probe"):
            hparams = job.hparams()
            declared = {} if job.kind == "probe" else {n: hp.distribution for n, hp in registry.get(job.method).hparams_spec.items()}
            params = fixed_params(hparams, declared)
        studies[job.study_name].enqueue_trial(params, user_attrs=attrs)


def _claim_in(storage: optuna.storages.RDBStorage, study: optuna.Study, keys: set[str]) -> Claimed | None:
    """Take one WAITING trial of ``study`` whose job key is in ``keys``, or None."""
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if waiting.user_attrs.get("job_key") not in keys:
            continue
        if not claim_waiting(storage, waiting):
            continue  # another worker was first
        record_heartbeat(storage, waiting)
        job = Job.from_attrs(waiting.user_attrs["job"])
        if job.kind == "search":
            sampler = optuna.samplers.TPESampler(seed=job.sampler_seed)
            study = optuna.load_study(study_name=study.study_name, storage=storage, sampler=sampler)
        return study, live_trial(study, waiting), job
    return None


def claim(storage: optuna.storages.RDBStorage, study_names: Sequence[str], keys: set[str]) -> Claimed | None:
    """Take one WAITING trial of these studies whose job key is in ``keys`` (atomically: two workers never get
    the same one), or None. Trials of other sweeps waiting in the same studies are left to those sweeps."""
    for name in study_names:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        if (claimed := _claim_in(storage, study, keys)) is not None:
            return claimed
    return None


def execute(job: Job, study: optuna.Study, trial: optuna.Trial, *, storage_url: str, device: str) -> None:
    """Run one claimed job inside its trial (which it finishes COMPLETE, PRUNED or FAIL)."""
    from benchmark.orchestration.probe_runs import run_probes
    from benchmark.orchestration.run import run_method

    if job.kind == "probe":
        run_probes(job.setup, backbones=(job.probe_backbone,), seed=job.seed, profile=job.profile,
                   profile_overrides=dict(job.profile_overrides), device=device, storage_url=storage_url,
                   claimed=(study, trial))
        return
    overrides = dict(job.overrides)
    if job.kind == "search":
        spec = registry.get(job.method).hparams_spec
        for name in job.searched:
            overrides[name] = suggest(trial, name, spec[name].distribution)
    run_method(job.method, job.setup, seed=job.seed, profile=job.profile, overrides=overrides,
               profile_overrides=dict(job.profile_overrides), device=device, storage_url=storage_url,
               claimed=(study, trial), objective=job.objective, embedding=job.embedding)


def _run_claimed(storage: optuna.storages.RDBStorage, claimed: Claimed, *, storage_url: str, device: str) -> bool:
    """Run a claimed job, one log line before and one after; whether it ran (a job that raises is left FAIL)."""
    study, trial, job = claimed
    log(f"[pid {os.getpid()}] {job.experiment}: {job.row} on {job.setup}, seed {job.seed}"
        + (f", search trial {job.slot}" if job.kind == "search" else ""))
    started = time.perf_counter()
    try:
        execute(job, study, trial, storage_url=storage_url, device=device)
    except Exception as error:  # noqa: BLE001 - the job's trial is FAIL; keep working
        if stored_trial(storage, trial).state == TrialState.RUNNING:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            study.tell(trial, state=TrialState.FAIL)
        log(f"[pid {os.getpid()}] job failed: {type(error).__name__}: {error}")
        return False
    finished = stored_trial(storage, trial)
    log(f"[pid {os.getpid()}] done: {job.row} on {job.setup}, seed {job.seed}: {finished.state.name}"
        + (f", value {finished.value:.2f}" if finished.value is not None else "")
        + f" in {time.perf_counter() - started:.0f} s")
    return True


def work(queue: WorkQueue, *, device: str = "auto", threads: int | None = None) -> int:
    """A worker: claim and run the trials of ``queue`` until none is left; returns how many ran.

    A job that raises is left FAIL (the coordinator retries it); the worker goes on with the next.
    """
    if threads:
        torch.set_num_threads(threads)
    storage = open_storage(queue.storage_url)
    ran = 0
    wanted = set(queue.keys)
    while (claimed := claim(storage, queue.study_names, wanted)) is not None:
        ran += _run_claimed(storage, claimed, storage_url=queue.storage_url, device=device)
    return ran


def _worker_main(queue: WorkQueue, device: str, threads: int) -> None:
    """Entry point of a local worker process: SIGTERM fails the running trial cleanly; one log line per job,
    no progress bars."""
    interrupt_on_sigterm()
    disable_bars()
    work(queue, device=device, threads=threads)


def _worker_device(device: str, index: int) -> str:
    """One GPU per worker when there are several (round robin); otherwise ``device`` as given."""
    if device == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{index % torch.cuda.device_count()}"
    return device


def launch_local(queue: WorkQueue, *, workers: int, device: str) -> None:
    """Run the waiting trials here (one worker) or in ``workers`` spawned processes sharing the CPU cores."""
    if workers == 1:
        work(queue, device=device)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_main, args=(queue, _worker_device(device, i), threads))
                 for i in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=30)


def submitit_executor(folder: Path, cluster: str) -> Any:
    """submitit's executor for ``cluster`` (``slurm`` or ``local``), logs in ``folder``; a UserError when submitit
    is not installed or there is no such cluster here (no ``srun``: not on a SLURM cluster)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher slurm needs submitit: pip install 'fer-sfda-bench[cluster]'") from None
    try:
        return submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except RuntimeError as error:
        reason = " ".join(str(error).split())
        raise UserError(f"--launcher {cluster}: cannot submit from here ({reason}); use --launcher local") from None


def launch_submitit(
    queue: WorkQueue, *, workers: int, device: str, cluster: str = "slurm", parameters: dict[str, Any] | None = None
) -> None:
    """Submit ``workers`` worker jobs through submitit (``cluster="slurm"``, or ``"local"`` to test the path
    on one machine; logs in ``$FERBENCH_HOME/submitit``) and wait for them. ``parameters`` go to
    ``executor.update_parameters`` (e.g. ``slurm_partition``, ``timeout_min``, ``gpus_per_node``)."""
    folder = home() / "submitit"
    executor = submitit_executor(folder, cluster)
    executor.update_parameters(**{"timeout_min": 24 * 60, "nodes": 1, "tasks_per_node": 1, **(parameters or {})})
    try:
        jobs = [executor.submit(work, queue, device=device) for _ in range(workers)]
    except Exception as error:  # noqa: BLE001 - whatever submitit or sbatch refused, in one line
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UserError(f"--launcher {cluster}: submitting the workers failed ({reason})") from error
    log(f"submitted {len(jobs)} {cluster} worker job(s); logs in {folder}")
    for job in jobs:
        job.result()


@dataclass(frozen=True)
class Launch:
    """How a sweep runs its workers: ``launcher`` (``local``, ``slurm`` or ``submitit-local``), how many, on
    which device, and ``options`` for submitit's executor."""

    launcher: str = "local"
    workers: int = 1
    device: str = "auto"
    options: dict[str, Any] | None = None

    def check(self) -> None:
        """A UserError now, before any trial is enqueued, when this launcher cannot start workers here."""
        if self.launcher == "slurm":
            submitit_executor(home() / "submitit", "slurm")

    def start(self, queue: WorkQueue) -> None:
        """Run workers on ``queue`` and wait for them."""
        if self.launcher == "local":
            launch_local(queue, workers=self.workers, device=self.device)
        else:
            launch_submitit(queue, workers=self.workers, device=self.device,
                            cluster="slurm" if self.launcher == "slurm" else "local", parameters=self.options)


def unique_jobs(jobs: Iterable[Job]) -> list[Job]:
    """The first job of each key, in order (two experiments, or two rows, may ask for the very same run:
    table4's SwAV + purity is fig4's purity at the default Q, and table1's CluP (SwAV) too)."""
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.key, job)
    return list(seen.values())


def _artifacts_built(trials: Survey) -> dict[str, int]:
    """How many completed runs of the sweep trained each artifact (from the records' ``artifacts.built_now``)."""
    built: Counter[str] = Counter()
    for found in trials.values():
        for trial in found:
            record = trial.user_attrs.get("record", {}) if trial.state == TrialState.COMPLETE else {}
            for name, now in record.get("artifacts", {}).get("built_now", {}).items():
                built[name] += int(bool(now))
                built.setdefault(name, 0)
    return dict(built)


def _done(jobs: list[Job], trials: Survey) -> int:
    """How many of ``jobs`` are done (a COMPLETE or PRUNED trial)."""
    return sum(any(t.state in DONE_STATES for t in trials[job.key]) for job in jobs)


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
        states = [t.state for t in trials[job.key]]
        if any(s in DONE_STATES for s in states):
            continue
        if any(s in ACTIVE_STATES for s in states):
            triage.active += 1
        elif states.count(TrialState.FAIL) > max_retries:
            triage.failed[job.key] = next(t.user_attrs.get("error", "?") for t in reversed(trials[job.key]))
        else:
            triage.pending.append(job)
    return triage


def _run_missing(
    storage: optuna.storages.RDBStorage, jobs: list[Job], trials: Survey, *, queue: WorkQueue, launch: Launch,
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
        waiting = len(triage.pending) + sum(t.state == TrialState.WAITING for found in trials.values() for t in found)
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


def _withdraw(storage: optuna.storages.RDBStorage, jobs: list[Job], error: str) -> None:
    """Fail the WAITING trials of ``jobs`` with ``error``: no worker will claim them (the next sweep retries)."""
    for found in survey(storage, jobs).values():
        for trial in found:
            if trial.state == TrialState.WAITING:
                fail_waiting(storage, trial, error)


def _resolve(experiment: str | Experiment | Sequence[str | Experiment]) -> list[Experiment]:
    """The experiments a ``sweep`` argument names."""
    experiments = [experiment] if isinstance(experiment, (str, Experiment)) else list(experiment)
    return [get_experiment(e) if isinstance(e, str) else e for e in experiments]


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
    """Run every missing job of ``experiment`` (a name, an ``Experiment``, or several: their jobs together, each
    job once however many experiments share it) on ``setups`` for seeds ``0..seeds-1`` on the storage at
    ``storage_url`` (default ``default_storage_url()``; see the module doc); ``launcher`` is ``local``,
    ``slurm`` or ``submitit-local`` (submitit's local executor: the SLURM path on one machine, for tests);
    ``profile_overrides`` (``{dotted path: value}``) are applied to every job's profile."""
    check_minimum("workers", workers)
    check_minimum("max_retries", max_retries)
    if launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher {launcher!r}; known: local, slurm")
    launch = Launch(launcher, workers, device, launcher_options)
    launch.check()  # before anything is enqueued: a refused launch leaves no trial WAITING
    resolved = _resolve(experiment)
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

"""``sweep``: run every missing job of an experiment on one results storage, with any number of workers.

How work is shared, with Optuna as the only scheduler:

1. The coordinator surveys the storage: each job's key (``benchmark.orchestration.experiments.Job.key``) is matched
   against the stored trials of its study. A COMPLETE trial (or PRUNED: a probe that cannot run, e.g.
   ImageNet without weights) means done; WAITING or RUNNING with a live heartbeat means someone has it;
   nothing, or only FAIL trials (stale heartbeats are failed first), means it must run.
2. Missing jobs are enqueued as WAITING trials (their params fixed, the job in a user attribute).
3. Workers (this process, ``--workers N`` local processes, or SLURM jobs through submitit) claim WAITING
   trials one by one (Optuna's atomic WAITING -> RUNNING transition; ``storage.open_storage`` makes it
   atomic on SQLite too), run them inside that very trial, and stop when none is left.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from benchmark.config.errors import UserError, interrupt_on_sigterm
from benchmark.orchestration.experiments import Experiment, Job, get_experiment
from benchmark.store.identity import trial_key
from benchmark.store.storage import default_storage_url, fixed_params, heartbeat_seconds, open_storage, suggest
from datasets.progress import disable_bars, log
from datasets.registry import home
from methods import registry

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE_STATES = (TrialState.WAITING, TrialState.RUNNING)


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


def _studies(storage: optuna.storages.RDBStorage, names: set[str]) -> dict[str, optuna.Study]:
    """Each study by name, created if missing, with stale RUNNING trials failed first."""
    studies = {}
    for name in sorted(names):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        optuna.storages.fail_stale_trials(study)
        studies[name] = study
    return studies


def survey(storage: optuna.storages.RDBStorage, jobs: list[Job]) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Stored trials of each job, by job key (stale trials failed first)."""
    wanted = {job.key for job in jobs}
    found: dict[str, list[optuna.trial.FrozenTrial]] = {key: [] for key in wanted}
    for study in _studies(storage, {job.study_name for job in jobs}).values():
        for trial in study.get_trials(deepcopy=False):
            key = trial_key(trial.user_attrs)
            if key in wanted:
                found[key].append(trial)
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


def claim(
    storage: optuna.storages.RDBStorage, study_names: list[str], keys: set[str]
) -> tuple[optuna.Study, optuna.Trial, Job] | None:
    """Take one WAITING trial of these studies whose job key is in ``keys`` (atomically: two workers never get
    the same one), or None. Trials of other sweeps waiting in the same studies are left to those sweeps."""
    for name in study_names:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if waiting.user_attrs.get("job_key") not in keys:
                continue
            if not storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING):
                continue  # another worker was first
            storage.record_heartbeat(waiting._trial_id)
            job = Job.from_attrs(waiting.user_attrs["job"])
            if job.kind == "search":
                sampler = optuna.samplers.TPESampler(seed=job.sampler_seed)
                study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
            return study, optuna.Trial(study, waiting._trial_id), job
    return None


def execute(job: Job, study: optuna.Study, trial: optuna.Trial, storage_url: str, device: str) -> None:
    """Run one claimed job inside its trial (which it finishes COMPLETE, PRUNED or FAIL)."""
    from benchmark.orchestration.probes import run_probes
    from benchmark.orchestration.run import run_method

    if job.kind == "probe":
        run_probes(job.setup, (job.probe_backbone,), job.seed, job.profile, device, storage_url, claimed=(study, trial))
        return
    overrides = dict(job.overrides)
    if job.kind == "search":
        spec = registry.get(job.method).hparams_spec
        for name in job.searched:
            overrides[name] = suggest(trial, name, spec[name].distribution)
    run_method(job.method, job.setup, job.seed, job.profile, overrides, device, storage_url,
               claimed=(study, trial), objective=job.objective, embedding=job.embedding)


def work(storage_url: str, study_names: list[str], keys: list[str], device: str = "auto", threads: int | None = None) -> int:
    """A worker: claim and run the WAITING trials of ``study_names`` whose job key is in ``keys`` until none is
    left; returns how many ran.

    A job that raises is left FAIL (the coordinator retries it); the worker goes on with the next.
    """
    if threads:
        torch.set_num_threads(threads)
    storage = open_storage(storage_url)
    ran = 0
    wanted = set(keys)
    while (claimed := claim(storage, study_names, wanted)) is not None:
        study, trial, job = claimed
        log(f"[pid {os.getpid()}] {job.experiment}: {job.row} on {job.setup}, seed {job.seed}"
            + (f", search trial {job.slot}" if job.kind == "search" else ""))
        started = time.perf_counter()
        try:
            execute(job, study, trial, storage_url, device)
        except Exception as error:  # noqa: BLE001 - the job's trial is FAIL; keep working
            if storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
                study.tell(trial, state=TrialState.FAIL)
            log(f"[pid {os.getpid()}] job failed: {type(error).__name__}: {error}")
        else:
            ran += 1
            finished = storage.get_trial(trial._trial_id)
            log(f"[pid {os.getpid()}] done: {job.row} on {job.setup}, seed {job.seed}: {finished.state.name}"
                + (f", value {finished.value:.2f}" if finished.value is not None else "")
                + f" in {time.perf_counter() - started:.0f} s")
    return ran


def _worker_main(storage_url: str, study_names: list[str], keys: list[str], device: str, threads: int) -> None:
    """Entry point of a local worker process: SIGTERM fails the running trial cleanly; one log line per job,
    no progress bars."""
    interrupt_on_sigterm()
    disable_bars()
    work(storage_url, study_names, keys, device, threads)


def _worker_device(device: str, index: int) -> str:
    """One GPU per worker when there are several (round robin); otherwise ``device`` as given."""
    if device == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{index % torch.cuda.device_count()}"
    return device


def launch_local(storage_url: str, study_names: list[str], keys: list[str], workers: int, device: str) -> None:
    """Run the waiting trials here (one worker) or in ``workers`` spawned processes sharing the CPU cores."""
    if workers == 1:
        work(storage_url, study_names, keys, device)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(storage_url, study_names, keys, _worker_device(device, i), threads))
        for i in range(workers)
    ]
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


def launch_submitit(
    storage_url: str, study_names: list[str], keys: list[str], workers: int, device: str, folder: Path,
    cluster: str = "slurm",
    parameters: dict[str, Any] | None = None,
) -> None:
    """Submit ``workers`` worker jobs through submitit (``cluster="slurm"``, or ``"local"`` to test the path
    on one machine) and wait for them. ``parameters`` go to ``executor.update_parameters`` (e.g.
    ``slurm_partition``, ``timeout_min``, ``gpus_per_node``)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher slurm needs submitit: pip install 'fer-sfda-bench[cluster]'") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    executor.update_parameters(**{"timeout_min": 24 * 60, "nodes": 1, "tasks_per_node": 1, **(parameters or {})})
    jobs = [executor.submit(work, storage_url, study_names, keys, device) for _ in range(workers)]
    log(f"submitted {len(jobs)} {cluster} worker job(s); logs in {folder}")
    for job in jobs:
        job.result()


def unique_jobs(jobs: Iterable[Job]) -> list[Job]:
    """The first job of each key, in order (two experiments, or two rows, may ask for the very same run:
    table4's SwAV + purity is fig4's purity at the default Q, and table1's CluP (SwAV) too)."""
    seen: dict[str, Job] = {}
    for job in jobs:
        seen.setdefault(job.key, job)
    return list(seen.values())


def _artifacts_built(trials: dict[str, list[optuna.trial.FrozenTrial]]) -> dict[str, int]:
    """How many completed runs of the sweep trained each artifact (from the records' ``artifacts.built_now``)."""
    built: Counter[str] = Counter()
    for found in trials.values():
        for trial in found:
            record = trial.user_attrs.get("record", {}) if trial.state == TrialState.COMPLETE else {}
            for name, now in record.get("artifacts", {}).get("built_now", {}).items():
                built[name] += int(bool(now))
                built.setdefault(name, 0)
    return dict(built)


def sweep(
    experiment: str | Experiment | Sequence[str | Experiment],
    setups: tuple[str, ...],
    seeds: int = 1,
    profile: str | None = None,
    workers: int = 1,
    storage: str | None = None,
    launcher: str = "local",
    device: str = "auto",
    max_retries: int = 2,
    launcher_options: dict[str, Any] | None = None,
) -> SweepReport:
    """Run every missing job of ``experiment`` (a name, an ``Experiment``, or several: their jobs together, each
    job once however many experiments share it) on ``setups`` for seeds
    ``0..seeds-1`` (see the module doc); ``launcher`` is ``local``, ``slurm`` or ``submitit-local`` (submitit's
    local executor: the SLURM path on one machine, for tests)."""
    if workers < 1:
        raise UserError("--workers must be at least 1")
    if launcher not in ("local", "slurm", "submitit-local"):
        raise UserError(f"unknown launcher {launcher!r}; known: local, slurm")
    experiments = [experiment] if isinstance(experiment, (str, Experiment)) else list(experiment)
    resolved = [get_experiment(e) if isinstance(e, str) else e for e in experiments]
    experiment = "+".join(e.name for e in resolved)
    jobs = unique_jobs(job for e in resolved for job in e.jobs(setups, seeds, profile))
    url = storage or default_storage_url()
    if launcher == "slurm" and url.startswith("sqlite"):
        log("warning: SQLite on a cluster's shared file system is fragile; prefer a PostgreSQL --storage URL")
    store = open_storage(url)
    study_names = sorted({job.study_name for job in jobs})
    keys = sorted({job.key for job in jobs})
    trials = survey(store, jobs)
    report = SweepReport(experiment, len(jobs), sum(any(t.state in DONE_STATES for t in trials[j.key]) for j in jobs))
    log(f"sweep {experiment}: {len(jobs)} jobs on {', '.join(setups)}; {report.done_before} already done")
    while True:
        pending, active = [], 0
        for job in jobs:
            states = [t.state for t in trials[job.key]]
            if any(s in DONE_STATES for s in states):
                continue
            if any(s in ACTIVE_STATES for s in states):
                active += 1
            elif states.count(TrialState.FAIL) > max_retries:
                report.failed[job.key] = next(t.user_attrs.get("error", "?") for t in reversed(trials[job.key]))
            else:
                pending.append(job)
        if pending:
            enqueue(store, pending)
        elif not active:
            break
        # Trials to claim: those just enqueued plus any left WAITING (by a sweep killed before its workers ran).
        waiting = len(pending) + sum(t.state == TrialState.WAITING for found in trials.values() for t in found)
        if waiting:
            log(f"sweep {experiment}: {waiting} job(s) to run with {workers} {launcher} worker(s)")
            if launcher == "local":
                launch_local(url, study_names, keys, workers, device)
            else:
                folder = home() / "submitit"
                launch_submitit(url, study_names, keys, workers, device, folder, "slurm" if launcher == "slurm" else "local",
                                launcher_options)
        else:
            time.sleep(heartbeat_seconds())  # trials another process runs: wait for them to finish or go stale
        trials = survey(store, jobs)
    report.ran = sum(any(t.state in DONE_STATES for t in trials[j.key]) for j in jobs) - report.done_before
    report.artifacts_built = _artifacts_built(trials)
    return report

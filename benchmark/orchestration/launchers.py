"""How a sweep starts its workers, by name (as DomainBed's ``command_launchers``): ``LAUNCHERS``.

A worker (``work``) claims the WAITING trials of a ``WorkQueue`` one by one (``benchmark.store.work_queue.claim``)
and runs each job inside its trial (``benchmark.orchestration.run.run_job``) until none is left. ``local`` runs
one worker here or several spawned processes; ``slurm`` submits worker jobs through submitit; ``submitit-local``
is submitit's local executor (the SLURM path on one machine, for tests).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.config.errors import UserError, interrupt_on_sigterm
from benchmark.orchestration.experiments import Job
from benchmark.store.storage import open_storage
from benchmark.store.study_scan import Storage
from benchmark.store.trial_runs import ClaimedTrial
from benchmark.store.work_queue import claim
from datasets.progress import disable_bars, log
from datasets.registry import home


@dataclass(frozen=True)
class WorkQueue:
    """What a sweep's workers take: the WAITING trials of ``study_names`` whose job key is in ``keys``, on the
    storage at ``storage_url`` (a URL, so that worker processes and cluster jobs open it themselves)."""

    storage_url: str
    study_names: tuple[str, ...]
    keys: tuple[str, ...]

    @classmethod
    def of(cls, storage_url: str, jobs: Iterable[Job]) -> WorkQueue:
        """The queue of ``jobs`` on the storage at ``storage_url``."""
        jobs = list(jobs)
        return cls(storage_url, tuple(sorted({job.study_name for job in jobs})),
                   tuple(sorted({job.key for job in jobs})))


def _run_claimed(claimed: ClaimedTrial, *, storage_url: str, device: str) -> bool:
    """Run a claimed job, one log line before and one after; whether it ran (a job that raises is left FAIL)."""
    from benchmark.orchestration.run import run_job

    job = Job.from_attrs(claimed.job_attrs)
    log(f"[pid {os.getpid()}] {job.experiment}: {job.row} on {job.setup}, seed {job.seed}"
        + (f", search trial {job.slot}" if job.kind == "search" else ""))
    started = time.perf_counter()
    try:
        run_job(job, claimed, storage_url=storage_url, device=device)
    except Exception as error:  # noqa: BLE001 - the job's trial is FAIL; keep working
        claimed.fail_if_running(error)
        log(f"[pid {os.getpid()}] job failed: {type(error).__name__}: {error}")
        return False
    status, value = claimed.outcome()
    log(f"[pid {os.getpid()}] done: {job.row} on {job.setup}, seed {job.seed}: {status.name}"
        + (f", value {value:.2f}" if value is not None else "")
        + f" in {time.perf_counter() - started:.0f} s")
    return True


def work(queue: WorkQueue, *, device: str = "auto", threads: int | None = None) -> int:
    """A worker: claim and run the trials of ``queue`` until none is left; returns how many ran.

    A job that raises is left FAIL (the coordinator retries it); the worker goes on with the next.
    """
    if threads:
        torch.set_num_threads(threads)
    storage: Storage = open_storage(queue.storage_url)
    ran = 0
    wanted = set(queue.keys)
    while (claimed := claim(storage, queue.study_names, wanted)) is not None:
        ran += _run_claimed(claimed, storage_url=queue.storage_url, device=device)
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


#: ``Launcher.start``'s signature: (queue, workers, device, submitit options).
Start = Callable[[WorkQueue, int, str, dict[str, Any] | None], None]


def _no_check() -> None:
    """A launcher that can always start here."""


@dataclass(frozen=True)
class Launcher:
    """A way to run a sweep's workers: ``start(queue, workers, device, options)`` runs them on ``queue`` and waits;
    ``check()`` raises a UserError when they cannot start here (called before any trial is enqueued)."""

    start: Start
    check: Callable[[], None] = _no_check


def _start_local(queue: WorkQueue, workers: int, device: str, options: dict[str, Any] | None) -> None:
    launch_local(queue, workers=workers, device=device)


def _start_slurm(queue: WorkQueue, workers: int, device: str, options: dict[str, Any] | None) -> None:
    launch_submitit(queue, workers=workers, device=device, cluster="slurm", parameters=options)


def _start_submitit_local(queue: WorkQueue, workers: int, device: str, options: dict[str, Any] | None) -> None:
    launch_submitit(queue, workers=workers, device=device, cluster="local", parameters=options)


def _check_slurm() -> None:
    submitit_executor(home() / "submitit", "slurm")


#: The launchers by name (``sweep(launcher=...)``; the CLI's ``--launcher`` offers ``local`` and ``slurm``).
LAUNCHERS: dict[str, Launcher] = {
    "local": Launcher(_start_local),
    "slurm": Launcher(_start_slurm, _check_slurm),
    "submitit-local": Launcher(_start_submitit_local),
}


@dataclass(frozen=True)
class Launch:
    """How a sweep runs its workers: ``launcher`` (a name in ``LAUNCHERS``), how many, on which device, and
    ``options`` for submitit's executor."""

    launcher: str = "local"
    workers: int = 1
    device: str = "auto"
    options: dict[str, Any] | None = None

    def check(self) -> None:
        """A UserError now, before any trial is enqueued, when this launcher cannot start workers here."""
        LAUNCHERS[self.launcher].check()

    def start(self, queue: WorkQueue) -> None:
        """Run workers on ``queue`` and wait for them."""
        LAUNCHERS[self.launcher].start(queue, self.workers, self.device, self.options)

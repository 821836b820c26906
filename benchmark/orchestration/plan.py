"""``sweep --plan``: what a sweep would do, without doing it.

For each job of the grid: its state in the results storage as ``sweep.survey`` sees it (done, running or
missing; the survey creates the studies but no trial), the artifacts it needs (the source model of its
(dataset, profile, seed); the SSL backbones its method declares, per (objective, dataset, profile, seed)) and
whether each is already built here, and the projected device time of what is missing:

1. stored: the median of the stored runs of the same method, setup and profile values on the same kind of device
   (their stage timings, ``records.StageTimer``; a run that trained its source model counts without that stage,
   one that pretrained an SSL backbone does not count); for a source model, the ``source`` stage of stored runs
   that trained one on the same dataset at the same profile values;
2. bench: the figures ``python -m benchmark bench`` saved for the profile on this kind of device
   (``benchmark.orchestration.bench``);
3. unknown.
"""

from __future__ import annotations

import json
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from benchmark.config.devices import resolve_device
from benchmark.config.errors import UserError
from benchmark.config.paths import imagenet_weights
from benchmark.config.profiles import Profile
from benchmark.config.setups import get_setup
from benchmark.orchestration import bench
from benchmark.orchestration.experiments import Experiment, Job, get_experiments
from benchmark.orchestration.sweep import survey, unique_jobs
from benchmark.services.artifacts import artifact_dir, is_built
from benchmark.services.pretrain import pretrain_key
from benchmark.services.source import source_key
from benchmark.store.identity import needs_source_model, ssl_objectives
from benchmark.store.storage import completed_records, default_storage_url, open_storage
from benchmark.store.study_scan import Storage, StoredTrial
from datasets.cache import is_complete, read_manifest
from datasets.registry import cache_dir

STORED, BENCH, UNKNOWN = "stored", "bench", "unknown"
#: The columns ``format_plan`` fills (an 80-column terminal).
PLAN_WIDTH = 80


@dataclass
class PlannedArtifact:
    """An artifact some job of the plan needs.

    Attributes:
        kind: ``source`` or ``ssl``.
        ssl: the objective of an SSL backbone (None for a source model).
        dataset, profile, seed: what it is trained on, at, with.
        folder: its folder under ``$FERBENCH_HOME/artifacts`` (None when its key cannot be computed here: see
            ``note``).
        built: whether that folder is complete.
        seconds: projected device seconds to build it (None: built, or unknown).
        basis: where ``seconds`` comes from (``stored (N runs)``, ``bench``) or why it is unknown.
        note: why the folder is unknown (dataset not prepared, no ImageNet weights).
    """

    kind: str
    ssl: str | None
    dataset: str
    profile: str
    seed: int
    folder: str | None = None
    built: bool = False
    seconds: float | None = None
    basis: str = ""
    note: str = ""

    @property
    def name(self) -> str:
        what = "source model" if self.kind == "source" else f"{self.ssl} backbone"
        return f"{what} on {self.dataset} ({self.profile}, seed {self.seed})"


@dataclass
class PlannedJob:
    """A job of the plan: where it shows (``trial``: a search trial's slot, e.g. ``#3``), its
    state (``done``, ``running`` or ``missing``), the artifacts it needs (``PlannedArtifact.name``), and its
    projected device seconds without building them (None when done or unknown) with their ``basis``."""

    experiment: str
    row: str
    setup: str
    seed: int
    method: str
    profile: str
    key: str
    state: str
    trial: str = ""
    artifacts: list[str] = field(default_factory=list)
    seconds: float | None = None
    basis: str = ""


@dataclass
class SweepPlan:
    """The whole plan: its jobs, the artifacts they need, and on which device the projections hold."""

    experiment: str
    device: str
    jobs: list[PlannedJob]
    artifacts: list[PlannedArtifact]

    def totals(self) -> dict[str, Any]:
        """Counts, and projected device hours of the missing jobs and of the artifacts to build (known ones;
        ``*_unknown`` counts the others)."""
        missing = [job for job in self.jobs if job.state != "done"]
        to_build = [a for a in self.artifacts if not a.built]
        hours = {name: sum(x.seconds or 0.0 for x in items) / 3600
                 for name, items in (("jobs", missing), ("artifacts", to_build))}
        return {
            "jobs": len(self.jobs), "done": len(self.jobs) - len(missing), "missing": len(missing),
            "artifacts": len(self.artifacts), "to_build": len(to_build),
            "job_hours": hours["jobs"], "artifact_hours": hours["artifacts"],
            "device_hours": hours["jobs"] + hours["artifacts"],
            "jobs_unknown": sum(job.seconds is None for job in missing),
            "artifacts_unknown": sum(a.seconds is None for a in to_build),
        }

    def advice(self) -> list[str]:
        """What would make the unknown projections known: a bench of each profile that has none."""
        profiles = dict.fromkeys(x.profile for x in (*self.jobs, *self.artifacts) if x.basis == UNKNOWN)
        return [bench.BENCH_ADVICE.format(profile=profile) for profile in profiles]

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "device": self.device, "jobs": [asdict(j) for j in self.jobs],
                "artifacts": [{**asdict(a), "name": a.name} for a in self.artifacts], "totals": self.totals(),
                "advice": self.advice()}


# --- stored timings ----------------------------------------------------------------------------------------------


def _values_key(values: Mapping[str, Any]) -> str:
    """A profile's values as one comparable string (tuples and lists alike, as JSON stores them)."""
    return json.dumps(values, sort_keys=True, default=str)


def _job_seconds(record: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(seconds of the job itself, seconds it spent training its source model) from a record's stage timings;
    the first is None when the run also pretrained an SSL backbone (inside its ``adapt`` stage)."""
    seconds = dict(record.get("seconds", {}))
    artifacts = record.get("artifacts", {})
    built = dict(artifacts.get("built_now", {}))
    source_built = bool(built.pop(artifacts.get("source"), False))
    source_seconds = seconds.pop("source", None) if source_built else None
    return (None if any(built.values()) else sum(seconds.values())), source_seconds


@dataclass
class StoredTimings:
    """Seconds of stored runs on one kind of device: per (method, setup, profile values) for jobs, per (source
    dataset, profile values) for source models they trained."""

    jobs: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    sources: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, storage: Storage, device: torch.device) -> StoredTimings:
        """The stage timings of the completed records made on ``device``'s kind of device."""
        timings = cls()
        for record in completed_records(storage):
            if "profile_values" not in record or torch.device(record.get("device", "meta")).type != device.type:
                continue
            values = _values_key(record["profile_values"])
            job, source = _job_seconds(record)
            if job is not None:
                timings.jobs[record["method"], record["setup"], values].append(job)
            if source is not None:
                timings.sources[record["source_dataset"], values].append(source)
        return timings


def _estimate(stored: list[float], from_bench: Callable[[bench.Stages], float | None],
              stages: bench.Stages | None) -> tuple[float | None, str]:
    """(seconds, basis): the stored median, else the bench projection, else None with ``unknown`` (no bench
    figures) or ``not modelled`` (bench has no formula for it)."""
    if stored:
        return statistics.median(stored), f"{STORED} ({len(stored)} run{'s' if len(stored) > 1 else ''})"
    if stages is None:
        return None, UNKNOWN
    seconds = from_bench(stages)
    return (None, "not modelled") if seconds is None else (seconds, BENCH)


# --- artifacts ---------------------------------------------------------------------------------------------------


def _needs(job: Job) -> list[tuple[str, str | None, str]]:
    """(kind, objective, dataset) of each artifact ``job`` needs (as ``run`` and ``probes`` fetch them)."""
    setup = get_setup(job.setup)
    source = [("source", None, setup.source)] if needs_source_model(job.method) else []
    return [*source, *(("ssl", ssl, setup.target) for ssl in ssl_objectives(job.method, job.hparams()))]


def _artifact_folder(kind: str, ssl: str | None, dataset: str, profile: Profile, seed: int) -> tuple[Path | None, str]:
    """(the artifact's folder, or None with why): its key (``source_key``, ``pretrain_key``) needs the dataset's
    prepared train split (its hashes)."""
    cache = cache_dir(dataset)
    if not is_complete(cache):
        return None, f"dataset {dataset} is not prepared here"
    train = read_manifest(cache)["splits"]["train"]
    if kind == "ssl":
        return artifact_dir("ssl", pretrain_key(ssl, dataset, profile, seed, train["images_sha256"])), ""
    try:
        weights = imagenet_weights(profile)
    except UserError:
        return None, "no local ImageNet weights file"
    return artifact_dir("source", source_key(dataset, profile, seed, train, weights)), ""


def _plan_artifact(kind: str, ssl: str | None, dataset: str, profile: Profile, seed: int, timings: StoredTimings,
                   stages: bench.Stages | None) -> PlannedArtifact:
    """An artifact with its folder, whether it is built, and (if not) its projected build time."""
    folder, note = _artifact_folder(kind, ssl, dataset, profile, seed)
    artifact = PlannedArtifact(kind, ssl, dataset, profile.name, seed, folder.name if folder else None,
                               bool(folder and is_built(folder)), note=note)
    if not artifact.built:
        if kind == "source":
            stored = timings.sources.get((dataset, _values_key(profile.as_record())), [])
            build = partial(bench.source_seconds, dataset, profile)
        else:
            stored, build = [], partial(bench.ssl_seconds, ssl, dataset, profile)
        artifact.seconds, artifact.basis = _estimate(stored, build, stages)
    return artifact


# --- the plan ----------------------------------------------------------------------------------------------------


def _state(trials: list[StoredTrial]) -> str:
    """``done`` (a COMPLETE or PRUNED trial), ``running`` (WAITING or RUNNING) or ``missing``."""
    if any(t.status.done for t in trials):
        return "done"
    return "running" if any(t.status.active for t in trials) else "missing"


def _bench_stages(profile: Profile, device: torch.device) -> bench.Stages | None:
    """The saved bench figures of ``profile`` on this kind of device, if measured at the same network values."""
    result = bench.load_bench(profile.name, device)
    return result.stages if result is not None and result.backbone == bench.figures_key(profile) else None


@dataclass
class _Planner:
    """What planning the jobs shares: the stored timings, the device, and the artifacts met so far."""

    timings: StoredTimings
    device: torch.device
    artifacts: dict[tuple[Any, ...], PlannedArtifact] = field(default_factory=dict)

    def artifact(self, need: tuple[str, str | None, str], profile: Profile, seed: int,
                 stages: bench.Stages | None) -> PlannedArtifact:
        """The planned artifact ``need`` (kind, objective, dataset) at ``profile`` and ``seed``, planned once."""
        identity = (*need, _values_key(profile.as_record()), seed)
        if identity not in self.artifacts:
            self.artifacts[identity] = _plan_artifact(*need, profile, seed, self.timings, stages)
        return self.artifacts[identity]

    def job(self, job: Job, trials: list[StoredTrial]) -> PlannedJob:
        """``job`` with its state, the artifacts it needs and, unless done, its projected seconds."""
        profile = job.resolved_profile
        stages = _bench_stages(profile, self.device)
        needed = [self.artifact(need, profile, job.seed, stages).name for need in _needs(job)]
        trial = f"#{job.slot}" if job.kind == "search" else ""
        planned = PlannedJob(job.experiment, job.row, job.setup, job.seed, job.method, job.profile, job.key,
                             _state(trials), trial, needed)
        if planned.state != "done":
            stored = self.timings.jobs.get((job.method, job.setup, _values_key(profile.as_record())), [])
            projection = partial(bench.job_seconds, job.method, job.hparams(), get_setup(job.setup), profile)
            planned.seconds, planned.basis = _estimate(stored, projection, stages)
        return planned


def plan_sweep(
    experiment: str | Experiment | Sequence[str | Experiment],
    setups: tuple[str, ...],
    *,
    seeds: int = 1,
    profile: str | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    storage_url: str | None = None,
    device: str = "auto",
) -> SweepPlan:
    """The plan of ``sweep`` with the same arguments (see the module doc); runs and trains nothing, creates no
    trial. Projections hold for ``device`` (its kind: stored runs on CPU do not project GPU time).

    Returns each job's state (``done``, ``running``, ``missing``), the artifacts the jobs need, and the projected
    device seconds of what is missing (``SweepPlan.totals``); ``format_plan`` prints it.
    """
    resolved = get_experiments(experiment)
    jobs = unique_jobs(job for e in resolved for job in e.jobs(setups, seeds, profile, profile_overrides))
    storage = open_storage(storage_url or default_storage_url())
    trials = survey(storage, jobs)
    torch_device = resolve_device(device)
    planner = _Planner(StoredTimings.load(storage, torch_device), torch_device)
    planned = [planner.job(job, trials[job.key]) for job in jobs]
    return SweepPlan("+".join(e.name for e in resolved), str(torch_device), planned, list(planner.artifacts.values()))


def _short_basis(basis: str) -> str:
    """A projection's basis in at most 8 columns: ``3 runs`` (stored), ``bench``, ``unknown``, ``no model``."""
    if basis.startswith(STORED):
        return basis[len(STORED):].strip(" ()")
    return "no model" if basis == "not modelled" else basis


def format_plan(plan: SweepPlan) -> str:
    """The plan as ``sweep --plan`` prints it, within 80 columns: jobs by experiment, artifacts (numbered A1,
    A2 ... in the jobs' needs) each with its folder under ``$FERBENCH_HOME/artifacts/<kind>``, then totals."""
    duration = bench.format_duration
    ids = {artifact.name: f"A{i}" for i, artifact in enumerate(plan.artifacts, 1)}
    lines = [f"plan of sweep {plan.experiment} (projected device time on {plan.device}; nothing is run)"]
    header = f"  {'state':<7} {'row':<22} {'setup':<11} {'seed':>4} {'projected':>9} {'basis':<8} needs"
    for experiment in dict.fromkeys(job.experiment for job in plan.jobs):
        lines += ["", f"{experiment}:", header]
        for job in (j for j in plan.jobs if j.experiment == experiment):
            done, row = job.state == "done", job.row + (f" {job.trial}" if job.trial else "")
            lines.append(f"  {job.state:<7} {row[:22]:<22} {job.setup[:11]:<11} {job.seed:>4} "
                         f"{'-' if done else duration(job.seconds):>9} {'-' if done else _short_basis(job.basis):<8} "
                         f"{', '.join(ids[name] for name in job.artifacts) or '-'}")
    lines += ["", "artifacts:"]
    for artifact in plan.artifacts:
        built = artifact.built
        cost = (f"cost {artifact.basis}" if artifact.seconds is None
                else f"{duration(artifact.seconds)} ({_short_basis(artifact.basis)})")
        state = "built" if built else f"to build, {cost}"
        lines.append(f"  {ids[artifact.name]:<4}{artifact.name}")
        text = f"{state}; folder {artifact.folder or f'unknown: {artifact.note}'}"
        lines += textwrap.wrap(text, width=PLAN_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6,
                               break_on_hyphens=False)
    totals = plan.totals()
    unknown = totals["jobs_unknown"] + totals["artifacts_unknown"]
    lines += ["", f"totals: {totals['jobs']} jobs ({totals['done']} done, {totals['missing']} to run: "
              f"{totals['job_hours']:.2f} device-hours)",
              f"        {totals['artifacts']} artifacts ({totals['to_build']} to build: "
              f"{totals['artifact_hours']:.2f} device-hours)",
              f"        in all {totals['device_hours']:.2f} device-hours"
              + (f" + {unknown} item(s) of unknown cost" if unknown else "")]
    for advice in plan.advice():
        lines += textwrap.wrap(f"for the unknown costs, {advice}", width=PLAN_WIDTH, subsequent_indent="  ",
                               break_on_hyphens=False)
    return "\n".join(lines)

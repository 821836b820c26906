"""``bench``: time a few steps of every training stage at a profile's real sizes on this device, then project the
wall time of the paper's jobs from those figures.

The stages and how they are timed: ``benchmark.orchestration.stage_timing``. The projections (``source_seconds``,
``ssl_seconds``, ``job_seconds``): ``benchmark.orchestration.cost_model``, from what each method and SSL objective
declares (``methods.core.cost``). The figures are saved to ``$FERBENCH_HOME/bench/<profile>-<device slug>.json``,
where ``sweep --plan`` finds them. This module is the command and its public names (the others are re-exported).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmark.config.devices import resolve_device
from benchmark.config.profiles import Profile
from benchmark.orchestration.cost_model import (
    Projection,
    job_seconds,
    paper_projections,
    source_seconds,
    ssl_seconds,
)
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.orchestration.stage_timing import (
    TIMED_STEPS,
    Stages,
    StageTime,
    device_name,
    device_slug,
    stage_measures,
)
from datasets.progress import progress_bar
from datasets.registry import home

__all__ = [
    "BENCH_ADVICE", "TIMED_STEPS", "BenchResult", "Projection", "StageTime", "Stages",
    "bench_path", "device_name", "device_slug", "figures_key", "format_bench", "format_duration", "job_seconds",
    "load_bench", "paper_projections", "run_bench", "save_bench", "source_seconds", "ssl_seconds",
    "stage_measures",
]

BENCH_ADVICE = "run `python -m benchmark bench --profile {profile}` first"


@dataclass
class BenchResult:
    """What ``bench`` measured on one device at one profile (saved as JSON, read by ``sweep --plan``).

    ``backbone``: the profile values the per-image figures depend on (``figures_key``); projections at a
    profile with other values do not use them. ``load_average``: the machine's 1-minute load average before
    the run (other work on the cores slows every figure down).
    """

    profile: str
    device: str
    device_name: str
    slug: str
    threads: int
    torch: str
    measured_at: str
    wall_seconds: float
    backbone: dict[str, Any]
    stages: dict[str, StageTime]
    projections: list[Projection] = field(default_factory=list)
    load_average: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, each stage with its derived figures (``images_per_second``, ``augmentation_share``,
        ``profile_step_seconds``) too."""
        values = asdict(self)
        for name, stage in self.stages.items():
            values["stages"][name].update(images_per_second=stage.images_per_second,
                                          augmentation_share=stage.augmentation_share,
                                          profile_step_seconds=stage.profile_step_seconds)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BenchResult:
        """The result of ``as_dict`` (derived stage figures are ignored; projections may be absent)."""
        values = dict(values)
        names = {f.name for f in fields(StageTime)}
        values["stages"] = {k: StageTime(**{n: v for n, v in stage.items() if n in names})
                            for k, stage in values["stages"].items()}
        values["projections"] = [Projection(**p) for p in values.get("projections", [])]
        return cls(**values)


# --- files ------------------------------------------------------------------------------------------------------------


def bench_path(profile: str, device: torch.device) -> Path:
    """``$FERBENCH_HOME/bench/<profile>-<device slug>.json``."""
    return home() / "bench" / f"{profile}-{device_slug(device)}.json"


def load_bench(profile: str, device: torch.device) -> BenchResult | None:
    """The saved bench of ``profile`` on this kind of device, or None."""
    path = bench_path(profile, device)
    return BenchResult.from_dict(json.loads(path.read_text())) if path.is_file() else None


def save_bench(result: BenchResult, device: torch.device) -> Path:
    """Write ``result`` to ``bench_path`` (atomically); returns the path."""
    path = bench_path(result.profile, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result.as_dict(), indent=2))
    os.replace(tmp, path)
    return path


def figures_key(profile: Profile) -> dict[str, Any]:
    """The profile values per-image figures depend on: networks, input size, numerics."""
    return {**profile.backbone_fields(), "ssl_stem": profile.ssl_stem or profile.stem, **profile.numerics_fields()}


# --- the command -------------------------------------------------------------------------------------------------


def run_bench(profile_name: str = "paper", device: str = "auto") -> BenchResult:
    """Time every stage of ``stage_measures()`` at ``profile_name`` on ``device``, project the paper's jobs, and
    save the result (``save_bench``)."""
    profile = resolve_profile(profile_name)
    torch_device = resolve_device(device)
    torch.manual_seed(0)
    load_average = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    stages: dict[str, StageTime] = {}
    measures = stage_measures()
    with progress_bar() as bar:
        task = bar.add_task(f"bench {profile.name}", total=len(measures))
        for name, measure in measures.items():
            bar.update(task, description=f"bench {profile.name}: {name}")
            stages[name] = measure(profile, torch_device)
            bar.advance(task)
    result = BenchResult(
        profile=profile.name, device=str(torch_device), device_name=device_name(torch_device),
        slug=device_slug(torch_device), threads=torch.get_num_threads(), torch=torch.__version__,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=round(time.perf_counter() - started, 1), backbone=figures_key(profile), stages=stages,
        projections=paper_projections(profile, stages), load_average=load_average,
    )
    save_bench(result, torch_device)
    return result


def format_duration(seconds: float | None) -> str:
    """``12 s``, ``3.5 min``, ``4.2 h`` or ``3.1 d``; ``unknown`` for None."""
    if seconds is None or math.isnan(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _stage_row(stage: StageTime) -> str:
    """One line of the stage table: images/s for the steps and extraction, seconds for the k-means stages."""
    clustering = stage.name in ("kmeans", "ssl_kmeans")
    rate = "-" if clustering else f"{stage.images_per_second:.1f}"
    timed = "-" if clustering else f"{stage.timed_batch}/{stage.batch}"
    share = "-" if stage.augmentation_share is None else f"{stage.augmentation_share:.0%}"
    return f"{stage.label:<76} {timed:>8} {rate:>9} {format_duration(stage.profile_step_seconds):>10} {share:>12}"


def format_bench(result: BenchResult, path: Path | None = None) -> str:
    """The stage table and the projected paper jobs, as ``bench`` prints them."""
    steps = TIMED_STEPS["cuda" if result.device.startswith("cuda") else "cpu"]
    load = "" if result.load_average is None else f", load average {result.load_average:.1f} before the run"
    title = (f"bench: profile {result.profile} on {result.device} ({result.device_name}, {result.threads} threads"
             f"{load}), torch {result.torch}; 1 warm-up + {steps} timed step(s) per training stage; "
             f"{result.wall_seconds:.0f} s in all")
    lines = [title, "",
             f"{'stage':<76} {'batch':>8} {'images/s':>9} {'step/call':>10} {'augmentation':>12}",
             *(_stage_row(stage) for stage in result.stages.values())]
    notes = [f"  {stage.name}: {stage.note}" for stage in result.stages.values() if stage.note]
    if notes:
        lines += ["", "scaled figures (a step's cost per image is taken as constant in the batch size):", *notes]
    lines += ["", f"projected wall time of the paper's jobs at profile {result.profile} on this device (one seed):",
              f"{'job':<44} {'images':>8} {'epochs':>7} {'wall time':>10}"]
    lines += [f"{row.name:<44} {row.images:>8,} {row.epochs:>7} {format_duration(row.seconds):>10}"
              for row in result.projections]
    total = sum(row.seconds or 0.0 for row in result.projections)
    lines.append(f"{'total':<44} {'':>8} {'':>7} {format_duration(total):>10}")
    if path is not None:
        lines += ["", f"saved to {path}"]
    return "\n".join(lines)

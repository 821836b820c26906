"""Stored trials as JSON lines that travel with the repository (``results export`` / ``results import``).

Export writes every COMPLETE trial of every study (FAIL, RUNNING, WAITING and PRUNED trials are not results:
they stay in the storage only) as one JSON object per line, one file per experiment:
``<experiment>.jsonl`` for a trial a sweep made (its ``job`` user attribute names the experiment that enqueued
it: a job shared by several experiments swept together is stored, and exported, once, under the first), and
``runs.jsonl`` for the others (``run``, ``probe``). Keys, param names and attribute names are sorted; an
attribute's value keeps its stored order (a record's dicts are ordered data: the order of its training
curves is the order a figure draws them). Lines are sorted by study, then trial key (natural order,
so search slot 2 precedes slot 10), then start and completion time (several trials of one job keep their
order: the latest counts in leaderboards), then the line itself; trial ids and numbers are left out, so the
files depend only on what the trials hold, not on the storage they came from.

A line holds what ``optuna.trial.create_trial`` and ``Study.add_trial`` (Optuna's public API) need to
recreate the trial: ``study``, ``directions``, ``state``, ``values``, ``params``, ``distributions``
(``optuna.distributions.distribution_to_json``, parsed), ``user_attrs`` (the run record and identity fields),
``intermediate_values`` (``[step, value]`` pairs by step) and ``datetime_start``/``datetime_complete`` (ISO
8601). System attributes are Optuna's bookkeeping (enqueued params) and are left out. Floats are written as
Python's ``repr`` (shortest round-trip form), so they read back bit for bit.

Import reads files (or folders of ``*.jsonl``), validates every line against the record schema
(``benchmark.store.record_schema``: types, ranges, known names) before adding anything (a bad line is one
``UserError`` naming its file, line and field, and nothing is imported), then adds each trial whose
line is not already present (the same line exported from the storage: importing twice adds nothing).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from benchmark.config.errors import UserError
from benchmark.store.configuration import record_configuration
from benchmark.store.identity import trial_key
from benchmark.store.record_schema import schema_error
from benchmark.store.study_scan import Storage, iter_trials

#: The file of trials that no sweep's experiment claims (``run``, ``probe``).
RUNS_FILE = "runs.jsonl"
#: The states exported: results only.
EXPORTED_STATES = (TrialState.COMPLETE,)


def trial_line(study: str, directions: Sequence[StudyDirection], trial: FrozenTrial) -> dict[str, Any]:
    """The JSON object of one stored trial (see the module doc), its keys, param names and attribute names in
    sorted order (an attribute's value keeps its own order: a record's dicts are ordered data)."""
    line = {
        "study": study,
        "directions": [direction.name for direction in directions],
        "state": trial.state.name,
        "values": None if trial.values is None else [float(v) for v in trial.values],
        "params": _sorted(trial.params),
        "distributions": {name: json.loads(distribution_to_json(d)) for name, d in sorted(trial.distributions.items())},
        "user_attrs": _sorted(trial.user_attrs),
        "intermediate_values": [[int(step), float(value)] for step, value in sorted(trial.intermediate_values.items())],
        "datetime_start": _iso(trial.datetime_start),
        "datetime_complete": _iso(trial.datetime_complete),
    }
    return _sorted(line)


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))


def dumps(line: dict[str, Any]) -> str:
    """One line's text (``trial_line``'s order kept), UTF-8 kept, floats in their shortest round-trip form, no
    newline."""
    return json.dumps(line, ensure_ascii=False)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _natural(text: str) -> tuple[Any, ...]:
    """``text`` split into text and number chunks, numbers compared as numbers (``#2`` before ``#10``)."""
    return tuple((int(chunk), chunk) if index % 2 else (-1, chunk)
                 for index, chunk in enumerate(re.split(r"(\d+)", text)))


def sort_key(line: dict[str, Any], text: str) -> tuple[Any, ...]:
    """Where a line goes in a file (and in what order import adds it): study, trial key, times, the line."""
    key = trial_key(line["user_attrs"]) or ""
    return (line["study"], _natural(key), key, line["datetime_start"] or "", line["datetime_complete"] or "", text)


def experiment_file(user_attrs: dict[str, Any]) -> str:
    """The file a trial goes to: ``<experiment>.jsonl`` for a sweep's job, else ``runs.jsonl``."""
    job = user_attrs.get("job")
    name = job.get("experiment") if isinstance(job, dict) else None
    if not isinstance(name, str) or not name.strip():
        return RUNS_FILE
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name.strip()).lstrip(".") + ".jsonl"


def _stored_lines(storage: Storage) -> Iterable[tuple[dict[str, Any], str]]:
    """Each stored trial as (line, text)."""
    for trial in iter_trials(storage):
        line = trial_line(trial.study_name, trial.directions, trial.frozen)
        yield line, dumps(line)


@dataclass
class ExportReport:
    """What an export wrote: trials per file, the files removed (stale), the trials left out (not COMPLETE)."""

    files: dict[Path, int] = field(default_factory=dict)
    removed: list[Path] = field(default_factory=list)
    left_out: int = 0


def _looks_like_records(path: Path) -> bool:
    """Whether ``path`` is a records file (its first line is a trial line), so that export may replace it."""
    try:
        with path.open(encoding="utf-8") as file:
            first = file.readline()
        line = json.loads(first) if first.strip() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(line, dict) and {"study", "directions", "state"} <= line.keys()


def export_records(storage: Storage, out: Path) -> ExportReport:
    """Write the COMPLETE trials of ``storage`` into ``out`` (one ``.jsonl`` per experiment, see the module
    doc), each file replaced atomically; records files in ``out`` that no trial goes to any more are removed.
    UserError when the storage has no COMPLETE trial (nothing is written or removed then)."""
    report = ExportReport()
    files: dict[str, list[tuple[tuple[Any, ...], str]]] = {}
    exported = {state.name for state in EXPORTED_STATES}
    for line, text in _stored_lines(storage):
        if line["state"] not in exported:
            report.left_out += 1
            continue
        files.setdefault(experiment_file(line["user_attrs"]), []).append((sort_key(line, text), text))
    if not files:
        raise UserError("no completed trial in the storage: nothing to export")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, lines in sorted(files.items()):
            path = out / name
            partial = path.with_name(f".{name}.partial")
            partial.write_text("".join(text + "\n" for _, text in sorted(lines)), encoding="utf-8")
            os.replace(partial, path)
            report.files[path] = len(lines)
        for stale in sorted(out.glob("*.jsonl")):
            if stale.name not in files and _looks_like_records(stale):
                stale.unlink()
                report.removed.append(stale)
    except OSError as error:
        raise UserError(f"cannot write the records into {out} ({error.strerror or error})") from error
    return report


@dataclass(frozen=True)
class RecordLine:
    """One validated line: where it came from, its study and directions, the trial it recreates, its canonical text."""

    where: str
    study: str
    directions: tuple[str, ...]
    trial: FrozenTrial
    text: str
    order: tuple[Any, ...]


def _record_files(paths: Sequence[Path]) -> list[Path]:
    """The files to import: each file given, and each folder's ``*.jsonl`` (by name)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise UserError(f"{path}: no .jsonl records in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    return files


def parse_line(text: str) -> tuple[str, tuple[str, ...], FrozenTrial]:
    """A line's study, directions and trial (``optuna.trial.create_trial``, times set), once the line meets the
    schema (``benchmark.store.record_schema``); ValueError (or TypeError, KeyError) saying what is wrong, a
    schema error as ``FIELD: problem``."""
    line = json.loads(text)
    if problem := schema_error(line):
        raise ValueError(problem)
    values, directions = line["values"], line["directions"]
    if values is not None and len(values) != len(directions):
        raise ValueError(f"values: {len(values)} values for {len(directions)} directions")
    distributions = {name: json_to_distribution(json.dumps(d)) for name, d in line["distributions"].items()}
    trial = optuna.trial.create_trial(
        state=TrialState[line["state"]], values=None if values is None else [float(v) for v in values],
        params=line["params"], distributions=distributions, user_attrs=line["user_attrs"],
        intermediate_values={step: float(value) for step, value in line["intermediate_values"]},
    )
    trial.datetime_start = datetime.fromisoformat(line["datetime_start"])
    trial.datetime_complete = datetime.fromisoformat(line["datetime_complete"])
    return line["study"], tuple(directions), trial


def read_records(paths: Sequence[Path]) -> list[RecordLine]:
    """Every line of the records files (folders: their ``*.jsonl``), validated; UserError ``FILE:LINE: what``
    at the first bad one. Blank lines are skipped."""
    lines = []
    for path in _record_files(paths):
        try:
            texts = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from error
        for number, text in enumerate(texts, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                study, directions, trial = parse_line(text)
                canonical = trial_line(study, [StudyDirection[d] for d in directions], trial)
            except Exception as error:  # noqa: BLE001 - whatever a bad line makes json or Optuna raise
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise UserError(f"{where}: not a trial record ({reason})") from error
            text = dumps(canonical)
            lines.append(RecordLine(where, study, directions, trial, text, sort_key(canonical, text)))
    return lines


@dataclass
class ImportReport:
    """What an import did: trials added, trials skipped (already present), added trials of a job the storage
    already had a completed trial for (the added one, being later, now counts), those of them whose
    configuration (profile overrides, code: ``benchmark.store.configuration``) differs from the one they
    replace, as ``(job key, stored configuration, imported configuration)``, studies created."""

    imported: int = 0
    skipped: int = 0
    shadowing: int = 0
    shadowing_other: list[tuple[str, str, str]] = field(default_factory=list)
    studies_created: list[str] = field(default_factory=list)


def _configuration(user_attrs: dict[str, Any]) -> str:
    record = user_attrs.get("record")
    return record_configuration(record) if isinstance(record, dict) else "-"


def import_records(storage: Storage, paths: Sequence[Path]) -> ImportReport:
    """Add the trials of the records files (or folders) to ``storage`` (see the module doc); returns what it did.

    Every line is validated, and every study's directions checked against the storage, before anything is
    added, so a bad input leaves the storage as it was.
    """
    lines = sorted(read_records(paths), key=lambda line: line.order)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    existing = {summary.study_name: summary for summary in summaries}
    for line in lines:
        summary = existing.get(line.study)
        if summary is not None and tuple(d.name for d in summary.directions) != line.directions:
            stored = "/".join(d.name for d in summary.directions)
            raise UserError(f"{line.where}: study {line.study!r} is {stored} in the storage, the record says "
                            f"{'/'.join(line.directions)}")
    present: set[str] = set()
    completed_keys: dict[tuple[str, str], str] = {}
    for stored, text in _stored_lines(storage):
        present.add(text)
        key = trial_key(stored["user_attrs"])
        if stored["state"] == "COMPLETE" and key is not None:
            completed_keys[(stored["study"], key)] = _configuration(stored["user_attrs"])
    report = ImportReport()
    studies: dict[str, optuna.Study] = {}
    for line in lines:
        if line.text in present:
            report.skipped += 1
            continue
        if line.study not in studies:
            if line.study not in existing:
                report.studies_created.append(line.study)
            studies[line.study] = optuna.create_study(
                study_name=line.study, storage=storage, load_if_exists=True,
                directions=[StudyDirection[d] for d in line.directions])
        studies[line.study].add_trial(line.trial)
        present.add(line.text)
        report.imported += 1
        key = trial_key(line.trial.user_attrs)
        if key is not None and (line.study, key) in completed_keys:
            report.shadowing += 1
            before, after = completed_keys[(line.study, key)], _configuration(line.trial.user_attrs)
            if before != after:
                report.shadowing_other.append((key, before, after))
    return report

"""The completed trials of a results storage, read once and indexed for tables, figures and notebooks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from benchmark.store.study_scan import Storage, TrialStatus, iter_trials

__all__ = ["Storage", "StoredTrials"]


@dataclass(frozen=True)
class StoredTrials:
    """The completed trials of a storage, indexed for tables.

    Attributes:
        by_key: job key -> the record of the latest completed trial with that key.
        by_study: study name -> (value, record, job key) of each completed trial (searches select from these).
        seeds: every seed that has a completed record.
    """

    by_key: dict[str, dict[str, Any]]
    by_study: dict[str, list[tuple[float, dict[str, Any], str | None]]]
    seeds: tuple[int, ...]

    @classmethod
    def load(cls, storage: Storage) -> StoredTrials:
        """Read every COMPLETE trial that holds a run record (``benchmark.store.study_scan.iter_trials``)."""
        by_key: dict[str, dict[str, Any]] = {}
        by_study: dict[str, list[tuple[float, dict[str, Any], str | None]]] = defaultdict(list)
        for trial in iter_trials(storage, (TrialStatus.COMPLETE,)):
            record = trial.attrs.get("record")
            if record is None:
                continue
            key = trial.key
            by_study[trial.study_name].append((trial.value, record, key))
            if key is not None:
                by_key[key] = record
        seeds = sorted({record["seed"] for trials in by_study.values() for _, record, _ in trials})
        return cls(by_key, dict(by_study), tuple(seeds))

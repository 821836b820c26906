"""The completed trials of a results storage, read once and indexed for tables, figures and notebooks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from benchmark.store.identity import trial_key

#: A results storage as ``benchmark.store.storage.open_storage`` returns it (callers never need Optuna's name).
Storage = optuna.storages.BaseStorage


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
    def load(cls, storage: optuna.storages.BaseStorage) -> StoredTrials:
        by_key: dict[str, dict[str, Any]] = {}
        by_study: dict[str, list[tuple[float, dict[str, Any], str | None]]] = defaultdict(list)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                record = trial.user_attrs.get("record")
                if record is None:
                    continue
                key = trial_key(trial.user_attrs)
                by_study[summary.study_name].append((trial.value, record, key))
                if key is not None:
                    by_key[key] = record
        seeds = sorted({record["seed"] for trials in by_study.values() for _, record, _ in trials})
        return cls(by_key, dict(by_study), tuple(seeds))

"""The one loop over the studies of a results storage: every stored trial as a ``StoredTrial``.

Tables (``stored_trials``), exports (``record_files``), a sweep's survey and claims (``work_queue``) and the
``run`` command's notes all read trials through ``iter_trials``. A ``StoredTrial`` shows its study, number,
``TrialStatus``, value and user attributes; the Optuna objects it wraps are for ``benchmark.store`` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from benchmark.store.identity import trial_key

#: A results storage as ``benchmark.store.storage.open_storage`` returns it (callers never need Optuna's name).
Storage = optuna.storages.BaseStorage


class TrialStatus(Enum):
    """A stored trial's state (Optuna's ``TrialState`` of the same name, without Optuna's type)."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"
    WAITING = "waiting"

    @property
    def done(self) -> bool:
        """A result (COMPLETE), or a job that cannot run here and was recorded so (PRUNED: e.g. a probe
        without ImageNet weights)."""
        return self in (TrialStatus.COMPLETE, TrialStatus.PRUNED)

    @property
    def active(self) -> bool:
        """Someone has it: WAITING (enqueued) or RUNNING."""
        return self in (TrialStatus.WAITING, TrialStatus.RUNNING)

    @classmethod
    def of(cls, state: TrialState) -> TrialStatus:
        """The status of an Optuna ``TrialState``."""
        return cls[state.name]

    @property
    def state(self) -> TrialState:
        """Optuna's ``TrialState`` of this status (for ``benchmark.store`` only)."""
        return TrialState[self.name]


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the storage held it when it was read.

    Attributes:
        study_name: the study it belongs to.
        frozen, study: the Optuna trial and its study (``benchmark.store`` only).
    """

    study_name: str
    frozen: FrozenTrial = field(repr=False, compare=False)
    study: optuna.Study = field(repr=False, compare=False)

    @property
    def number(self) -> int:
        """Its number within the study (0, 1, ... in creation order)."""
        return self.frozen.number

    @property
    def status(self) -> TrialStatus:
        """Its state when it was read."""
        return TrialStatus.of(self.frozen.state)

    @property
    def value(self) -> float | None:
        """The value it was completed with (None: not complete)."""
        return self.frozen.value

    @property
    def attrs(self) -> Mapping[str, Any]:
        """Its user attributes (the run ``record``, identity fields, a sweep's ``job``, an ``error``)."""
        return self.frozen.user_attrs

    @property
    def key(self) -> str | None:
        """The key of the job it answers (``benchmark.store.identity.trial_key``; None: none)."""
        return trial_key(self.frozen.user_attrs)

    @property
    def directions(self) -> list[StudyDirection]:
        """Its study's directions (``benchmark.store`` only)."""
        return self.study.directions


def iter_trials(storage: Storage, states: Iterable[TrialStatus] | None = None,
                study_names: Iterable[str] | None = None) -> Iterator[StoredTrial]:
    """Every stored trial whose status is in ``states`` (None: any), study by study, each study's in number order.

    Args:
        storage: the results storage.
        states: the statuses wanted (None: all).
        study_names: the studies to read, in this order (None: every study, in the storage's order); a name the
            storage has no study of is skipped.
    """
    wanted = None if states is None else tuple(status.state for status in states)
    if study_names is None:
        summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
        study_names = [summary.study_name for summary in summaries]
    for name in study_names:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        for trial in study.get_trials(deepcopy=False, states=wanted):
            yield StoredTrial(name, trial, study)

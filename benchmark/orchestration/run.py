"""One run: setup -> data -> source model -> method.adapt -> evaluation on target test -> record.

The method sees only what its setting allows (``methods.core.inputs``): the harness builds those views here,
and the target test labels are used only after ``adapt`` returns, to score the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from benchmark.config.devices import resolve_device
from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile, get_profile
from benchmark.config.setups import get_setup
from benchmark.config.versions import versions
from benchmark.services.embedding import embed_target_test
from benchmark.services.pretrain import PretrainedBackbone, get_pretrained_backbone
from benchmark.services.source import SplitTensors, get_source_model, split_tensors
from benchmark.services.validators import compute_validators
from benchmark.store.identity import job_recipe, trial_key
from benchmark.store.storage import TrialRequest, complete, open_storage, trial_for_run
from datasets.progress import log
from methods import registry
from methods.api import RunContext, Setting
from methods.core.evaluation import evaluate
from methods.core.inference import infer
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages
from methods.core.pseudo_labels import Selection, pseudo_label_stats
from methods.core.seeding import derive_seed, preserved_rng, seed_everything


class StageTimer:
    """Wall-clock seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def _labelled(split: SplitTensors, device: torch.device) -> LabelledImages:
    return LabelledImages(split.images, torch.from_numpy(split.labels).to(device))


def _method_inputs(setting: Setting, target_train: SplitTensors, source: str, profile: Profile, device: torch.device) -> Any:
    """The data a method of ``setting`` is allowed to see, and nothing more."""
    if setting is Setting.SOURCE:
        return None
    if setting is Setting.ORACLE:
        return OracleData(target=_labelled(target_train, device))
    unlabelled = UnlabelledImages(target_train.images)
    if setting is Setting.SFDA:
        return SourceFreeData(target=unlabelled)
    return UdaData(source=_labelled(split_tensors(source, "train", profile, device), device), target=unlabelled)


def _pseudo_label_stats(selection: Selection | None, truth: np.ndarray) -> dict[str, float] | None:
    """Kept count and fraction and accuracy (%) against the truth of the ``Selection`` a method left in
    ``ctx.stats["pseudo_labels"]``; the truth is read here, after ``adapt`` returned."""
    return None if selection is None else pseudo_label_stats(selection, torch.from_numpy(truth))


def _ssl_service(
    target: str, profile: Profile, seed: int, device: torch.device, built: dict[str, bool], declared: tuple[str, ...]
) -> Callable[[str], PretrainedBackbone]:
    """``RunContext.ssl_backbone``: the target's SSL backbone for this run's seed, built without moving the
    caller's random streams (a cached and a fresh pretraining leave the method's run identical).

    ``built`` receives ``{artifact folder name: trained during this call}`` for the run record, so a sweep's
    records show that each backbone was trained once. Only the objectives the method ``declared``
    (``Method.ssl_objectives``) are served: their recipes are in the run's key, so none can be used unseen.
    """

    def ssl_backbone(ssl: str) -> PretrainedBackbone:
        if ssl not in declared:
            raise UserError(f"the method asked for a {ssl} backbone that its ssl_objectives(hparams) does not declare "
                            f"({', '.join(declared) or 'none'}); declare it so its recipe is part of the run's identity")
        with preserved_rng():
            pretrained = get_pretrained_backbone(ssl, target, profile, seed, device)
        built[pretrained.path.name] = bool(pretrained.info["built_now"])
        return pretrained

    return ssl_backbone


def _note_earlier_trials(store: optuna.storages.RDBStorage, study_name: str, attrs: dict[str, Any],
                         hparams: dict[str, Any]) -> None:
    """Say so when the job this run answers already has completed trials: the run adds another (leaderboards
    use the newest; a sweep counts the job as done either way)."""
    key = trial_key({**attrs, "hparams": hparams})
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        return
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if trial_key(t.user_attrs) == key]
    if done:
        log(f"note: this job already has {len(done)} completed trial(s) in {study_name} (newest #{done[-1].number}, "
            f"accuracy {done[-1].user_attrs.get('record', {}).get('accuracy', float('nan')):.2f}%); this run adds "
            "another, and leaderboards will show the newest")


def objective_value(record: dict[str, Any], objective: str) -> float:
    """The number a trial reports to its study: ``accuracy`` (the default, and an oracle search's objective)
    or ``validator:NAME`` (an unsupervised validator on the target train split, e.g. ``validator:im``)."""
    if objective == "accuracy":
        return float(record["accuracy"])
    kind, _, name = objective.partition(":")
    if kind != "validator" or name not in record["validators"]:
        raise ValueError(f"unknown objective {objective!r}; expected accuracy or validator:{'|'.join(record['validators'])}")
    return float(record["validators"][name])


def run_method(
    method: str,
    setup: str,
    seed: int = 0,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    storage: str | None = None,
    claimed: tuple[optuna.Study, optuna.trial.Trial] | None = None,
    objective: str = "accuracy",
    embedding: bool = False,
) -> dict[str, Any]:
    """Run ``method`` on ``setup`` and return its run record (see docs/PROTOCOL.md, "The run record").

    Args:
        method: registered method name.
        setup: setup name (``synth``, ``raf_fer2013``...).
        seed: the user's seed; per-stage seeds are derived from it and recorded.
        profile: profile name; default = the setup's.
        overrides: ``--set KEY=VALUE`` hyperparameters (validated against the method's declaration).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        storage: results storage URL (default SQLite under ``FERBENCH_HOME``); the run is one trial there.
        claimed: a RUNNING trial a sweep worker claimed for this run (default: a new trial in the study
            ``run/<method>/<setup>/<profile>``).
        objective: what the trial reports as its value (``objective_value``; searches use validators).
        embedding: also store a 2-D t-SNE embedding of the adapted model's target test features (Fig. 3).
    """
    timer = StageTimer()
    the_setup = get_setup(setup)
    the_profile = get_profile(profile or the_setup.profile)
    cls = registry.get(method)
    hparams = registry.resolve_hparams(cls, the_setup.hparams, overrides or {}, the_profile)
    torch_device = resolve_device(device)
    store = open_storage(storage)
    declared = {name: hp.distribution for name, hp in cls.hparams_spec.items()}
    attrs = {"method": method, "setting": cls.setting.value, "setup": setup, "profile": the_profile.name, "seed": seed,
             "recipe": job_recipe(method, the_profile.name, hparams)}
    if embedding:
        attrs["embedding"] = True
    study_name = f"run/{method}/{setup}/{the_profile.name}"
    log(f"run {method} on {setup} (profile {the_profile.name}, seed {seed}, device {torch_device})")
    if claimed is None:
        _note_earlier_trials(store, study_name, attrs, hparams)

    built: dict[str, bool] = {}
    with trial_for_run(store, TrialRequest(study_name, hparams, declared, attrs), claimed) as (study, trial):
        with timer.stage("data"):
            target_test = split_tensors(the_setup.target, "test", the_profile, torch_device)
            target_train = split_tensors(the_setup.target, "train", the_profile, torch_device)
        with timer.stage("source"):
            source = get_source_model(the_setup.source, the_profile, seed, torch_device)
        method_seed = derive_seed("method", method, setup, seed)
        with timer.stage("data"):
            data = _method_inputs(cls.setting, target_train, the_setup.source, the_profile, torch_device)
        with timer.stage("adapt"):
            ctx = RunContext(
                torch_device, the_profile, method_seed, seed_everything(method_seed),
                ssl_backbone=_ssl_service(the_setup.target, the_profile, seed, torch_device, built,
                                          cls.ssl_objectives(hparams)),
            )
            model = cls(hparams).adapt(source.model, data, ctx)
        with timer.stage("evaluate"):
            result = evaluate(model, target_test.images, target_test.labels, the_profile.eval_batch_size)
            validators = compute_validators(infer(model, target_train.images, the_profile.eval_batch_size))
        if embedding:
            with timer.stage("embedding"):
                extra = {"embedding": embed_target_test(model, target_test, the_profile.eval_batch_size, method_seed)}
        else:
            extra = {}
        record = {
            "method": method,
            "setting": cls.setting.value,
            "setup": setup,
            "source_dataset": the_setup.source,
            "target_dataset": the_setup.target,
            "profile": the_profile.name,
            "profile_values": the_profile.as_record(),
            "recipe": attrs["recipe"],
            "seed": seed,
            "seeds": {"source": source.info["train_seed"], "method": method_seed},
            "hparams": hparams,
            "accuracy": result.accuracy,
            "mean_class_accuracy": result.mean_class_accuracy,
            "class_accuracy": result.class_accuracy,
            "confusion": result.confusion,
            "n_test": result.n,
            "validators": validators,
            "pseudo_labels": _pseudo_label_stats(ctx.stats.pop("pseudo_labels", None), target_train.labels),
            "method_stats": ctx.stats,
            "source_test_accuracy": source.info["source_test"]["accuracy"],
            "artifacts": {
                "source": source.path.name,
                "backbone": ctx.stats.pop("backbone_artifact", None),
                "built_now": {source.path.name: bool(source.info["built_now"]), **built},
            },
            "seconds": timer.seconds,
            "versions": versions(),
            "data": {
                "source_train_images_sha256": source.info["train_images_sha256"],
                "target_train_images_sha256": target_train.manifest_sha256,
                "target_test_images_sha256": target_test.manifest_sha256,
            },
            "device": str(torch_device),
            "threads": torch.get_num_threads(),  # CPU results are reproducible at a given thread count
            **extra,
        }
        complete(study, trial, record, objective_value(record, objective))
    return record

"""One run: setup -> data -> source model -> method.adapt -> evaluation on target test -> record.

The method sees only what its setting allows (``methods.core.inputs``): the harness builds those views here,
and the target test labels are used only after ``adapt`` returns, to score the model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark.config.devices import resolve_device
from benchmark.config.errors import UserError
from benchmark.config.numerics import ensure_numerics
from benchmark.config.options import check_seed
from benchmark.config.profiles import Profile
from benchmark.config.setups import Setup, get_setup
from benchmark.orchestration.experiments import Job
from benchmark.orchestration.probe_runs import run_probes
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.orchestration.run_record import StageTimer, common_fields
from benchmark.services.artifacts import built_now_entry
from benchmark.services.embedding import embed_target_test
from benchmark.services.pretrain import PretrainedBackbone, get_pretrained_backbone
from benchmark.services.source import SourceModel, SplitTensors, get_source_model, split_tensors
from benchmark.store.identity import job_recipe, trial_key
from benchmark.store.storage import open_storage
from benchmark.store.study_scan import Storage, TrialStatus, iter_trials
from benchmark.store.trial_runs import ClaimedTrial, TrialRequest, trial_for_run
from datasets import registry as datasets_registry
from datasets.progress import log
from methods import registry
from methods.api import Method, RunContext, Setting
from methods.core.inference import infer
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages
from methods.core.models import changed_parts
from methods.core.precision import autocast_dtype, full_precision, prepare_for_training, training_numerics
from methods.core.pseudo_labels import Selection, pseudo_label_stats
from methods.core.scores import encode_digits, score_predictions
from methods.core.seeding import derive_seed, preserved_rng, seed_everything
from methods.core.validators import compute_validators


@dataclass(frozen=True)
class RunPlan:
    """A run resolved before any data is loaded: the method class, setup, profile and final hyperparameters."""

    method: type[Method]
    setup: Setup
    profile: Profile
    seed: int
    hparams: dict[str, Any]

    @property
    def study_name(self) -> str:
        return f"run/{self.method.name}/{self.setup.name}/{self.profile.name}"

    def attrs(self, embedding: bool) -> dict[str, Any]:
        """The trial's identifying user attributes (``benchmark.store.identity.trial_key`` reads them)."""
        attrs = {"method": self.method.name, "setting": self.method.setting.value, "setup": self.setup.name,
                 "profile": self.profile.name, "seed": self.seed,
                 "recipe": job_recipe(self.method.name, self.profile, self.hparams)}
        return {**attrs, "embedding": True} if embedding else attrs


def plan_run(method: str, setup: str, *, seed: int, profile: str | None, overrides: dict[str, Any],
             profile_overrides: Mapping[str, Any] | None = None) -> RunPlan:
    """Resolve names, the profile and hyperparameters (every user mistake is a UserError here, before anything
    runs)."""
    check_seed(seed)
    the_setup = get_setup(setup)
    cls = registry.get(method)
    the_profile = resolve_profile(profile or the_setup.profile, profile_overrides, method)
    return RunPlan(cls, the_setup, the_profile, seed, registry.resolve_hparams(cls, the_setup.hparams, overrides,
                                                                              the_profile))


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
    plan: RunPlan, device: torch.device, built: dict[str, bool]
) -> Callable[[str], PretrainedBackbone]:
    """``RunContext.ssl_backbone``: the target's SSL backbone for this run's seed, built without moving the
    caller's random streams (a cached and a fresh pretraining leave the method's run identical).

    ``built`` receives ``{artifact folder name: trained during this call}`` for the run record, so a sweep's
    records show that each backbone was trained once. Only the objectives the method declares
    (``Method.ssl_objectives``) are served: their recipes are in the run's key, so none can be used unseen.
    """
    declared = plan.method.ssl_objectives(plan.hparams)

    def ssl_backbone(ssl: str) -> PretrainedBackbone:
        if ssl not in declared:
            raise UserError(f"the method asked for a {ssl} backbone that its ssl_objectives(hparams) does not declare "
                            f"({', '.join(declared) or 'none'}); declare it so its recipe is part of the run's identity")
        with preserved_rng(), full_precision(device):  # pretraining sets its own numerics
            pretrained = get_pretrained_backbone(ssl, plan.setup.target, plan.profile, plan.seed, device)
        prepare_for_training(pretrained.backbone, plan.profile)
        built.update(built_now_entry(pretrained))
        return pretrained

    return ssl_backbone


def _note_earlier_trials(store: Storage, plan: RunPlan, attrs: dict[str, Any]) -> None:
    """Say so when the job this run answers already has completed trials: the run adds another (leaderboards
    use the newest; a sweep counts the job as done either way)."""
    key = trial_key({**attrs, "hparams": plan.hparams})
    done = [t for t in iter_trials(store, (TrialStatus.COMPLETE,), (plan.study_name,)) if t.key == key]
    if done:
        log(f"note: this job already has {len(done)} completed trial(s) in {plan.study_name} (newest "
            f"#{done[-1].number}, accuracy {done[-1].attrs.get('record', {}).get('accuracy', float('nan')):.2f}%); "
            "this run adds another, and leaderboards will show the newest")


@dataclass
class EpochCurves:
    """``RunContext.report`` for one trial: the training curves a method reports (docs/PROTOCOL.md, "Training
    curves").

    Each ``report(epoch, values)`` sends ``values["loss"]`` (the primary series) to ``trial.report(loss,
    epoch)``, Optuna's intermediate values that optuna-dashboard plots, and stores every series in
    ``series`` ({name: [value per epoch]}, None where an epoch lacks one), written to the trial's ``curves``
    attribute at once (a live or failed run keeps what it reported) and to the run record. Epochs must increase;
    a repeated or earlier epoch is ignored with one note, as Optuna ignores a repeated step.
    """

    trial: ClaimedTrial | None = None
    series: dict[str, list[float | None]] = field(default_factory=dict)
    epochs: int = 0
    noted: bool = False

    def __call__(self, epoch: int, values: Mapping[str, float]) -> None:
        if epoch < self.epochs:
            if not self.noted:
                log(f"note: epoch {epoch} reported after epoch {self.epochs - 1}; ignored (epochs must increase)")
                self.noted = True
            return
        values = {name: float(value) for name, value in values.items()}
        for name in values:  # in the order reported, so that a record's curves are in a stable order
            if name not in self.series:
                self.series[name] = [None] * self.epochs
        self.epochs = epoch + 1
        for name, column in self.series.items():
            column.extend([None] * (self.epochs - len(column) - 1))
            column.append(values.get(name))
        if self.trial is not None:
            if "loss" in values and not math.isnan(values["loss"]):
                self.trial.report(values["loss"], epoch)
            self.trial.set_attr("curves", self.series)


@dataclass
class Adapted:
    """What the adaptation stage leaves for evaluation and the record."""

    model: torch.nn.Module
    source: SourceModel
    target_train: SplitTensors
    target_test: SplitTensors
    ctx: RunContext
    built: dict[str, bool]
    parts: dict[str, str]


def _adapt(plan: RunPlan, device: torch.device, timer: StageTimer, curves: EpochCurves) -> Adapted:
    """Load the target splits and the source model, then let the method adapt (timed per stage); the method's
    training curves go to ``curves``."""
    with timer.stage("data"):
        datasets_registry.ensure_all([plan.setup.source, plan.setup.target])
        target_test = split_tensors(plan.setup.target, "test", plan.profile, device)
        target_train = split_tensors(plan.setup.target, "train", plan.profile, device)
    with timer.stage("source"):
        source = get_source_model(plan.setup.source, plan.profile, plan.seed, device)
    method_seed = derive_seed("method", plan.method.name, plan.setup.name, plan.seed)
    with timer.stage("data"):
        data = _method_inputs(plan.method.setting, target_train, plan.setup.source, plan.profile, device)
    built: dict[str, bool] = {}
    with timer.stage("adapt"), training_numerics(plan.profile, device):
        ctx = RunContext(device, plan.profile, method_seed, seed_everything(method_seed),
                         ssl_backbone=_ssl_service(plan, device, built), report=curves)
        before = copy.deepcopy(source.model)  # what the method was given, whatever it does to its argument
        model = plan.method(plan.hparams).adapt(prepare_for_training(source.model, plan.profile), data, ctx)
    return Adapted(model, source, target_train, target_test, ctx, built, changed_parts(before, model))


def _evaluate(plan: RunPlan, run: Adapted, timer: StageTimer, embedding: bool) -> dict[str, Any]:
    """Score the adapted model on the target test split (the first use of its labels), the unsupervised
    validators on the target train split and, when asked, a 2-D embedding of the test features."""
    batch = plan.profile.eval_batch_size
    with timer.stage("evaluate"):
        predictions = infer(run.model, run.target_test.images, batch).logits.argmax(1).cpu().numpy()
        result = score_predictions(predictions, run.target_test.labels)
        validators = compute_validators(infer(run.model, run.target_train.images, batch))
    fields = result.as_record()
    fields["n_test"] = fields.pop("n")
    fields["test_predictions"] = encode_digits(predictions)
    fields["test_correct"] = encode_digits(predictions == run.target_test.labels)
    fields["validators"] = validators
    if embedding:
        with timer.stage("embedding"):
            fields["embedding"] = embed_target_test(run.model, run.target_test, batch, run.ctx.seed)
    return fields


def _record(plan: RunPlan, run: Adapted, scores: dict[str, Any], *, recipe: str, timer: StageTimer,
            device: torch.device, curves: EpochCurves) -> dict[str, Any]:
    """The run record (docs/PROTOCOL.md, "The run record")."""
    source, stats = run.source, run.ctx.stats
    extra = {"embedding": scores.pop("embedding")} if "embedding" in scores else {}
    return {
        **common_fields(method=plan.method.name, setting=plan.method.setting.value, setup=plan.setup.name,
                        profile=plan.profile, seed=plan.seed, hparams=plan.hparams, recipe=recipe),
        "source_dataset": plan.setup.source,
        "target_dataset": plan.setup.target,
        "seeds": {"source": source.info["train_seed"], "method": run.ctx.seed},
        **scores,
        "pseudo_labels": _pseudo_label_stats(stats.pop("pseudo_labels", None), run.target_train.labels),
        "method_stats": stats,
        "source_parts": run.parts,
        "curves": curves.series,
        "source_test_accuracy": source.info["source_test"]["accuracy"],
        "artifacts": {
            "source": source.path.name,
            "backbone": stats.pop("backbone_artifact", None),
            "built_now": {**built_now_entry(source), **run.built},
        },
        "data": {
            "source_train_images_sha256": source.info["train_images_sha256"],
            "source_train_labels_sha256": source.info["train_labels_sha256"],
            "target_train_images_sha256": run.target_train.manifest_sha256,
            "target_test_images_sha256": run.target_test.manifest_sha256,
            "target_test_labels_sha256": run.target_test.labels_sha256,
        },
        **timer.environment(device),
        "precision": "fp32" if autocast_dtype(plan.profile, device) is None else "bf16",  # as resolved on this device
        **extra,
    }


def run_method(
    method: str,
    setup: str,
    *,
    seed: int = 0,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    profile_overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    storage_url: str | None = None,
    claimed: ClaimedTrial | None = None,
    embedding: bool = False,
) -> dict[str, Any]:
    """Run ``method`` on ``setup`` as one trial of the results storage and return its run record.

    Args:
        method: registered method name; setup: setup name (``synth``, ``raf_fer2013``...).
        seed: the user's seed; per-stage seeds are derived from it and recorded.
        profile: profile name; default = the setup's.
        overrides: ``--set KEY=VALUE`` hyperparameters (validated against the method's declaration).
        profile_overrides: ``{dotted path: value}`` set on the profile (``benchmark.config.overrides``).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        storage_url: results storage URL (default SQLite under ``FERBENCH_HOME``).
        claimed: a RUNNING trial a sweep worker claimed for this run (default: a new trial in the study
            ``run/<method>/<setup>/<profile>``).
        embedding: also store a 2-D t-SNE embedding of the adapted model's target test features (Fig. 3).
    """
    plan = plan_run(method, setup, seed=seed, profile=profile, overrides=overrides or {},
                    profile_overrides=profile_overrides)
    ensure_numerics(plan.profile.numerics)
    torch_device = resolve_device(device)
    store = open_storage(storage_url)
    attrs = plan.attrs(embedding)
    log(f"run {method} on {setup} (profile {plan.profile.name}, seed {seed}, device {torch_device})")
    if claimed is None:
        _note_earlier_trials(store, plan, attrs)
    declared = {name: hp.distribution for name, hp in plan.method.hparams_spec.items()}
    timer = StageTimer()
    with trial_for_run(store, TrialRequest(plan.study_name, plan.hparams, declared, attrs), claimed) as trial:
        curves = EpochCurves(trial)
        adapted = _adapt(plan, torch_device, timer, curves)
        scores = _evaluate(plan, adapted, timer, embedding)
        record = _record(plan, adapted, scores, recipe=attrs["recipe"], timer=timer, device=torch_device,
                         curves=curves)
        trial.complete(record)
    return record


def run_job(job: Job, claimed: ClaimedTrial, *, storage_url: str, device: str) -> None:
    """Run one sweep job inside the trial a worker claimed for it (which it finishes COMPLETE, PRUNED or FAIL): a
    probe through ``run_probes``, a run or a search trial through ``run_method`` (a search trial's ``searched``
    hyperparameters drawn first, by a sampler seeded per slot: ``Job.sampler_seed``)."""
    if job.kind == "probe":
        run_probes(job.setup, backbones=(job.probe_backbone,), seed=job.seed, profile=job.profile,
                   profile_overrides=dict(job.profile_overrides), device=device, storage_url=storage_url,
                   claimed=claimed)
        return
    overrides = dict(job.overrides)
    if job.kind == "search":
        claimed = claimed.seeded(job.sampler_seed)
        spec = registry.get(job.method).hparams_spec
        for name in job.searched:
            overrides[name] = claimed.suggest(name, spec[name].distribution)
    run_method(job.method, job.setup, seed=job.seed, profile=job.profile, overrides=overrides,
               profile_overrides=dict(job.profile_overrides), device=device, storage_url=storage_url,
               claimed=claimed, embedding=job.embedding)

"""``bench``'s projections: the wall time of a job from the timed stages (``stage_timing``), without running it.

A job's time is the sum of the ``CostTerm`` s its method (``Method.adaptation_cost``) or SSL objective
(``SSLObjective.pretraining_cost``) declares, each images x epochs x seconds per image of the stage that runs
them, plus the feature extraction every run does. The assumptions are written next to each declaration;
docs/PERFORMANCE.md, section "bench", lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.profiles import Profile
from benchmark.config.setups import PAPER_SETUPS, Setup, get_setup
from benchmark.orchestration.stage_timing import KMEANS_K, Stages
from benchmark.store.identity import probe_backbone
from datasets.cache import is_complete, read_manifest
from datasets.registry import cache_dir
from datasets.synth import DOMAINS as SYNTH_DOMAINS
from methods import registry
from methods.api import CostTerm
from methods.ssl.ssl_registry import get_ssl, ssl_names, ssl_recipe

#: Train and test images of each dataset, used when its cache is not prepared here (a prepared cache's manifest
#: gives the exact counts and wins).
DATASET_SIZES: dict[str, tuple[int, int]] = {
    "rafdb": (12_271, 3_068),  # RAF-DB basic, official split (datasets/rafdb.py, docs/DATA.md)
    "fer2013": (28_709, 7_178),  # Training / PublicTest + PrivateTest (datasets/fer2013.py, docs/DATA.md)
    # 91,793 faces split 80/20 by photo (datasets/expw.py); the exact sizes depend on --split-seed: 0.8 x 91,793.
    "expw": (73_434, 18_359),
    # ASSUMPTION: 54,901 images in the CluP paper (docs/DATA.md); the train/test lists' sizes are not known here,
    # so 80/20 is assumed.
    "afe": (43_921, 10_980),
    **{name: (spec.n_train, spec.n_test) for name, spec in SYNTH_DOMAINS.items()},
}
#: The stage whose speed a step timed on another stem than its own is costed at (the network dominates).
FALLBACK_STAGE = "source"


@dataclass(frozen=True)
class Projection:
    """A projected job: ``name``, the images of one epoch, its epochs, and wall seconds (None: unknown)."""

    name: str
    images: int
    epochs: int
    seconds: float | None


def split_sizes(dataset: str) -> tuple[int, int]:
    """(train, test) images of ``dataset``: from its prepared cache when there is one, else ``DATASET_SIZES``."""
    cache = cache_dir(dataset)
    if is_complete(cache):
        splits = read_manifest(cache)["splits"]
        return int(splits["train"]["n"]), int(splits["test"]["n"])
    if dataset not in DATASET_SIZES:
        raise UserError(f"no size known for dataset {dataset!r}: prepare it (`python -m benchmark data prepare`)")
    return DATASET_SIZES[dataset]


def term_seconds(term: CostTerm, stages: Stages) -> float:
    """Seconds of one ``CostTerm`` at the timed ``stages``: the k-means call scaled by rows x clusters, else
    ``factor x epochs x images per pass x seconds per image`` (a step timed on another stem than the term's at the
    ``FALLBACK_STAGE``'s speed)."""
    stage = stages[term.stage]
    if term.clusters is not None:
        return stage.seconds * (term.images / stage.timed_batch) * (term.clusters / KMEANS_K)
    if term.stem is not None and term.stem != stage.stem:
        stage = stages[FALLBACK_STAGE]
    return term.factor * (term.epochs * term.images_per_pass() * stage.per_image)


def _total(terms: list[CostTerm], stages: Stages) -> float:
    """The seconds of ``terms``, added in their order."""
    seconds = 0.0
    for term in terms:
        seconds += term_seconds(term, stages)
    return seconds


def source_seconds(dataset: str, profile: Profile, stages: Stages) -> float:
    """Training the source model on ``dataset`` (``source`` stage) and scoring it on the test split."""
    train, test = split_sizes(dataset)
    recipe = profile.source
    steps = CostTerm("source", train, recipe.epochs, recipe.batch_size)
    return term_seconds(steps, stages) + term_seconds(CostTerm("infer", test), stages)


def ssl_seconds(ssl: str, dataset: str, profile: Profile, stages: Stages) -> float:
    """Pretraining ``ssl`` on ``dataset``'s train split, as the objective declares it
    (``SSLObjective.pretraining_cost``)."""
    train, _ = split_sizes(dataset)
    return _total(get_ssl(ssl).pretraining_cost(ssl_recipe(profile, ssl), train), stages)


def _adaptation_terms(method: str, hp: Mapping[str, Any], profile: Profile, n_target: int) -> list[CostTerm] | None:
    """The cost terms of a run of ``method`` (``Method.adaptation_cost``), or of a probe: none (the features of
    both splits, which ``job_seconds`` adds; the logistic regression itself is not modelled)."""
    if probe_backbone(method) is not None:
        return []
    return registry.get(method).adaptation_cost(dict(hp), profile, n_target)


def job_seconds(method: str, hp: Mapping[str, Any], setup: Setup, profile: Profile, stages: Stages) -> float | None:
    """A run (or probe) of ``method`` with hyperparameters ``hp`` on ``setup``, without building its artifacts:
    adaptation, then features of the target test and train splits (accuracy and validators). None: the method's
    cost is not modelled. Probes of SSL backbones are costed with the source network's extraction speed."""
    train, test = split_sizes(setup.target)
    terms = _adaptation_terms(method, hp, profile, train)
    if terms is None:
        return None
    return _total(terms, stages) + (train + test) * stages["infer"].per_image


def paper_projections(profile: Profile, stages: Stages) -> list[Projection]:
    """The paper's jobs at ``profile``: each source model, each SSL pretraining on each target, and each method
    that asks for it (``Method.bench_projected``) on each paper setup."""
    setups = [get_setup(name) for name in PAPER_SETUPS]
    rows = [Projection(f"source model on {d}", split_sizes(d)[0], profile.source.epochs,
                       source_seconds(d, profile, stages)) for d in dict.fromkeys(s.source for s in setups)]
    rows += [Projection(f"{ssl} pretraining on {d}", split_sizes(d)[0], ssl_recipe(profile, ssl).epochs,
                        ssl_seconds(ssl, d, profile, stages))
             for ssl in ssl_names() for d in dict.fromkeys(s.target for s in setups)]
    projected = [cls for cls in registry.available().values() if cls.bench_projected]
    for setup in setups:
        for cls in projected:
            hp = registry.resolve_hparams(cls, setup.hparams, {}, profile)
            detail = cls.describe_hparams(hp)
            name = f"{cls.name} on {setup.name}" + (f" ({detail})" if detail else "")
            rows.append(Projection(name, split_sizes(setup.target)[0], hp["epochs"],
                                   job_seconds(cls.name, hp, setup, profile, stages)))
    return rows

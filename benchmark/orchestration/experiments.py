"""Experiments as data: the CluP paper's Tables 1-4 and Figures 3-4 as grids of jobs.

An ``Experiment`` is a list of rows (a method with fixed hyperparameters, or a backbone probe) and of
searches (a method whose hyperparameters a seeded random sampler draws; each selection rule, an unsupervised
validator or, in a row labelled oracle, the target test accuracy, then picks its trial from the same trials). ``Experiment.jobs(setups, seeds, profile)`` expands it
into ``Job`` s, the unit a sweep worker runs; leaderboards and figures read the same definitions to find
each cell's trials in the storage, so a table is a pure function of the storage. An experiment also says what
reporting draws from it: its table (``TableSpec``) and its figures (``FigureSpec``).

How a row's or a search's hyperparameters were chosen is a ``SelectionRule`` (DomainBed's ``SelectionMethod``):
``FixedHyperparameters``, ``LinearProbe``, ``BestValidator(name)`` (unsupervised) or ``BestTestAccuracy``
(an oracle). The rule gives the text of the tables' selection column and picks a search's trial.

A job's identity (``Job.key``, ``benchmark.store.identity``) is what determines its result: method, setup, profile,
seed, the fully resolved hyperparameters (defaults <- profile <- setup <- overrides) and the profile recipes the
job depends on. A ``run --method`` from the command line with the same values has the same key, so a sweep
reuses it instead of running it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property, lru_cache
from typing import Any

from benchmark.config.errors import UserError
from benchmark.config.options import check_minimum
from benchmark.config.profiles import Profile
from benchmark.config.setups import PAPER_SETUPS, get_setup
from benchmark.orchestration.profile_resolution import frozen_overrides, resolve_profile
from benchmark.orchestration.report_specs import FigureKind, FigureSpec, TableKind, TableSpec
from benchmark.orchestration.selection import SEARCH_RULES, FixedHyperparameters, LinearProbe, SelectionRule
from benchmark.store.identity import job_recipe, probe_backbone, run_key, search_key
from methods import registry
from methods.declarations import SearchSpace
from methods.core.seeding import derive_seed

#: Display names of CluP's backbones.
BACKBONE_LABELS = {"source": "Source", "imagenet": "ImageNet", "swav": "SwAV", "deepclusterv2": "DeepClusterV2"}
#: Q values of the threshold sweep (Fig. 4).
FIG4_Q = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Row:
    """A fixed configuration run for every setup and seed of an experiment.

    Attributes:
        label: the row's name in tables and figures (also the key of the paper's numbers).
        method: a registered method name, or ``probe:<backbone>`` for a linear probe (Table 3).
        overrides: hyperparameters set on top of the defaults, the profile's and the setup's values.
        embedding: also store the 2-D embedding of the target test features (Fig. 3).
        swept: the overrides that depart from the paper's hyperparameters (a grid's axis, e.g. Fig. 4's ``q``);
            tables name them in the row's selection rule.
    """

    label: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    embedding: bool = False
    swept: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``probe`` for a linear-probe row (``probe:<backbone>``), ``run`` for a method's run."""
        return "run" if probe_backbone(self.method) is None else "probe"

    @property
    def rule(self) -> SelectionRule:
        """How the row's hyperparameters were chosen (the tables' selection column)."""
        if self.kind == "probe":
            return LinearProbe()
        return FixedHyperparameters(tuple((name, self.overrides[name]) for name in self.swept))

    def job(self, experiment: str, setup: str, seed: int, profile: ProfileArg = None) -> Job:
        """The row's job on ``setup`` for ``seed`` (``profile``: default the setup's)."""
        return Job(experiment, self.label, self.kind, self.method, setup, seed, setup_profile(setup, profile),
                   _frozen(self.overrides), embedding=self.embedding, profile_overrides=_choice(profile).overrides)


@dataclass(frozen=True)
class Search:
    """A hyperparameter search of one method: ``trials[profile]`` trials per setup and seed, run once
    (``trials_at``: a profile without a budget is an error, never a silent 0).

    Only the ``searched`` hyperparameters are drawn, by a random sampler seeded per trial (from the method's
    declared distributions; the draws never depend on a result); the rest stay fixed. Each of ``rules`` then
    picks one trial from the same stored trials (DomainBed's ``SelectionMethod``): by default every unsupervised
    validator on the unlabelled target train split (honest) and the best target test accuracy (an oracle,
    always labelled so). The oracle's line minus a validator's is the selection gap.
    """

    label: str
    method: str
    searched: tuple[str, ...]
    trials: dict[str, int]
    overrides: dict[str, Any] = field(default_factory=dict)
    rules: tuple[SelectionRule, ...] = SEARCH_RULES

    def trials_at(self, profile: str) -> int:
        """The number of trials per setup and seed at ``profile``; a UserError when the search has no budget for it
        (a new profile must say how many trials its searches run)."""
        if profile not in self.trials:
            raise UserError(f"the {self.label} search has no trial budget for profile {profile!r} (it has one for "
                            f"{', '.join(self.trials)}); add the profile to its trials (SEARCH_TRIALS)")
        return self.trials[profile]

    def job(self, experiment: str, setup: str, seed: int, profile: ProfileArg = None, slot: int = 0) -> Job:
        """Trial ``slot`` of the search on ``setup`` for ``seed`` (``profile``: default the setup's); all slots
        of one setup and seed share a study."""
        return Job(experiment, self.label, "search", self.method, setup, seed, setup_profile(setup, profile),
                   _frozen(self.overrides), searched=self.searched, slot=slot,
                   profile_overrides=_choice(profile).overrides)


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a sweep or report is at: a name (None: each setup's own) and dotted overrides (sorted pairs,
    ``frozen_overrides``). Where a profile name is accepted (``Row.job``, reports), a ``ProfileChoice`` is too."""

    name: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()


ProfileArg = str | ProfileChoice | None


def _choice(profile: ProfileArg) -> ProfileChoice:
    return profile if isinstance(profile, ProfileChoice) else ProfileChoice(profile)


def setup_profile(setup: str, profile: ProfileArg = None) -> str:
    """The profile name: ``profile``'s, or the setup's own when it names none."""
    return _choice(profile).name or get_setup(setup).profile


@dataclass(frozen=True)
class Experiment:
    """One of the paper's tables or figures, as data.

    Attributes:
        name: CLI key (``table1`` ... ``fig4``).
        title: what it reproduces.
        rows: fixed configurations.
        searches: hyperparameter searches (each run once; its rules pick honest and oracle lines from it).
        paper_setups: the setups it runs on real data (``--setups`` default when the data is there).
        first_seed_only: run one seed whatever ``--seeds`` says (a figure of one run, Fig. 3).
        table: what its leaderboard shows.
        figures: the figures drawn from its rows.
    """

    name: str
    title: str
    rows: tuple[Row, ...]
    searches: tuple[Search, ...] = ()
    paper_setups: tuple[str, ...] = PAPER_SETUPS
    first_seed_only: bool = False
    table: TableSpec = TableSpec()
    figures: tuple[FigureSpec, ...] = ()

    def jobs(self, setups: tuple[str, ...], seeds: int, profile: str | None = None,
             profile_overrides: Mapping[str, Any] | None = None) -> list[Job]:
        """Every job of the experiment: rows x setups x seeds, then one job per search trial; each at the setup's
        profile (or ``profile``) with ``profile_overrides`` (``benchmark.config.overrides``) applied."""
        check_minimum("seeds", seeds)
        seed_list = range(1 if self.first_seed_only else seeds)
        jobs = []
        for setup in setups:
            the_profile = setup_profile(setup, profile)
            choice = ProfileChoice(the_profile, frozen_overrides(resolve_profile(the_profile, profile_overrides).overrides))
            for seed in seed_list:
                jobs += [row.job(self.name, setup, seed, choice) for row in self.rows]
                jobs += [search.job(self.name, setup, seed, choice, slot)
                         for search in self.searches for slot in range(search.trials_at(the_profile))]
        return jobs


def _frozen(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(values.items()))


def _profile(name: str, profile_overrides: tuple[tuple[str, Any], ...], method: str | None = None) -> Profile:
    """Not cached here (a profile's values may change: tests patch them); each ``Job`` resolves its own once.
    ``method``: the profile as that method runs at it (its own source recipe where the profile says so)."""
    return resolve_profile(name, dict(profile_overrides), method)


@lru_cache(maxsize=4096)
def _resolved(method: str, setup: str, profile: str, overrides: tuple[tuple[str, Any], ...],
              profile_overrides: tuple[tuple[str, Any], ...] = ()) -> tuple[tuple[str, Any], ...]:
    """Resolved hyperparameters, cached: a leaderboard or a survey resolves the same row for every seed."""
    cls = registry.get(method)
    values = registry.resolve_hparams(cls, get_setup(setup).hparams, dict(overrides),
                                      _profile(profile, profile_overrides, method))
    return tuple(values.items())


@dataclass(frozen=True)
class Job:
    """One unit of sweep work: one run, one probe, or one trial of a search; a sweep plans, queues, claims and runs it.

    Its profile, recipe and key are computed once per job (``cached_property``: per instance, so a job made
    after a profile changed has the new ones). The store writes it as a trial's ``job`` user attribute
    (``as_attrs``) and a claimed trial's job is read back with ``from_attrs``.

    Attributes:
        experiment, row: where its result is shown.
        kind: ``run``, ``probe`` or ``search``.
        method: method name (``probe:<backbone>`` for probes).
        setup, seed, profile: as for ``run``.
        profile_overrides: dotted profile overrides (``benchmark.config.overrides``; sorted pairs).
        overrides: hyperparameters set by the row (sorted pairs).
        embedding: store the target test embedding (Fig. 3).
        searched: hyperparameters a search draws.
        slot: index of a search trial within its (search, setup, seed).
    """

    experiment: str
    row: str
    kind: str
    method: str
    setup: str
    seed: int
    profile: str
    overrides: tuple[tuple[str, Any], ...] = ()
    embedding: bool = False
    searched: tuple[str, ...] = ()
    slot: int = 0
    profile_overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def study_name(self) -> str:
        """The results study its trial goes to (the same as ``run`` and ``probe`` use from the CLI)."""
        if self.kind == "probe":
            return f"probe/{self.setup}/{self.profile}"
        if self.kind == "search":
            return f"search/{self.method}/{self.setup}/{self.profile}/seed{self.seed}"
        return f"run/{self.method}/{self.setup}/{self.profile}"

    @property
    def probe_backbone(self) -> str:
        return self.method.partition(":")[2]

    def hparams(self) -> dict[str, Any]:
        """The fully resolved hyperparameters of a run or probe (a search's are drawn when it runs)."""
        if self.kind == "probe":
            return {"backbone": self.probe_backbone}
        return dict(_resolved(self.method, self.setup, self.profile, self.overrides, self.profile_overrides))

    def queued_hparams(self) -> tuple[dict[str, Any], dict[str, SearchSpace | None]]:
        """The hyperparameters fixed when it is enqueued and their declared search spaces (a probe's: none
        declared; a search's: none at all, they are drawn when it runs)."""
        if self.kind == "search":
            return {}, {}
        if self.kind == "probe":
            return self.hparams(), {}
        return self.hparams(), {n: hp.distribution for n, hp in registry.get(self.method).hparams_spec.items()}

    @cached_property
    def resolved_profile(self) -> Profile:
        """Its profile as its method runs at it, with its overrides applied (``profile_resolution.resolve_profile``;
        a probe's: the profile's own source recipe)."""
        return _profile(self.profile, self.profile_overrides, None if self.kind == "probe" else self.method)

    @cached_property
    def recipe(self) -> str:
        """The fingerprint of the profile values its result depends on (``identity.recipe_fingerprint``)."""
        return job_recipe(self.method, self.resolved_profile, self.hparams())

    @cached_property
    def key(self) -> str:
        """Its identity in the storage (``identity.run_key``; a search trial: ``identity.search_key``)."""
        if self.kind == "search":
            return search_key(self.study_name, self.slot, self.recipe)
        return run_key(self.method, self.setup, self.profile, self.seed, self.hparams(), self.embedding, self.recipe)

    @property
    def sampler_seed(self) -> int:
        """Seed of the sampler that draws a search trial's hyperparameters (per slot: workers never collide)."""
        return derive_seed("search", self.study_name, self.slot)

    def as_attrs(self) -> dict[str, Any]:
        """JSON-ready form (a trial's user attribute ``job``; ``benchmark.store.work_queue.enqueue`` writes it)."""
        values = asdict(self)
        values["overrides"] = dict(self.overrides)
        values["profile_overrides"] = dict(self.profile_overrides)
        values["searched"] = list(self.searched)
        return values

    @classmethod
    def from_attrs(cls, values: dict[str, Any]) -> Job:
        """The job of a trial's ``job`` user attribute (``as_attrs``, read back from JSON); fields an older
        release wrote (a search's ``objective``) are ignored."""
        names = {f.name for f in fields(cls)}
        values = {name: value for name, value in values.items() if name in names}
        values["overrides"] = _frozen(values["overrides"])
        values["profile_overrides"] = frozen_overrides(values.get("profile_overrides", {}))
        values["searched"] = tuple(values["searched"])
        return cls(**values)


def _method_rows(*methods: str) -> tuple[Row, ...]:
    return tuple(Row(registry.get(m).label, m) for m in methods)


def _clup(backbone: str, score: str = "purity", **more: Any) -> dict[str, Any]:
    return {"backbone": backbone, "score": score, **more}


CLUP_DCV2 = Row("CluP (DeepClusterV2)", "clup", _clup("deepclusterv2"))
CLUP_SWAV = Row("CluP (SwAV)", "clup", _clup("swav"))
#: SHOT searched over its loss weights and lr; the epochs stay the profile's (a budget, not a knob).
SHOT_SEARCHED = ("lr", "cls_par", "ent_par")
#: Trials per setup and seed of Table 1's search at each profile (docs/LAB_NOTES.md, "The search budget"); ``tiny``
#: (tests, dry runs) runs none. Every profile needs an entry: ``Search.trials_at``.
SEARCH_TRIALS = {"quick": 2, "quick10": 2, "paper": 20, "tiny": 0}

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "table1",
            "Table 1: target test accuracy of every method on each setup",
            rows=(
                *_method_rows("source_only", "shot_im", "shot"),
                CLUP_DCV2,
                CLUP_SWAV,
                *_method_rows("nrc", "aad", "adacontrast", "dann", "cdan", "oracle"),
            ),
            searches=(Search("SHOT", "shot", SHOT_SEARCHED, SEARCH_TRIALS),),
            table=TableSpec(paper="Table 1", paper_average=True),
            figures=(FigureSpec(FigureKind.CONFUSION, "confusion"),),
        ),
        Experiment(
            "table2",
            "Table 2: per-class recall of the source-free methods",
            rows=(*_method_rows("shot_im", "shot"), CLUP_DCV2, CLUP_SWAV, *_method_rows("adacontrast")),
            paper_setups=("raf_fer2013",),
            table=TableSpec(TableKind.CLASS_RECALL, paper="Table 2"),
            figures=(FigureSpec(FigureKind.CLASS_RECALL, "class_recall"),),
        ),
        Experiment(
            "table3",
            "Table 3: linear probe on each frozen backbone (trained with target labels: oracle by design)",
            rows=tuple(Row(BACKBONE_LABELS.get(b, "Random init"), f"probe:{b}")
                       for b in ("imagenet", "source", "deepclusterv2", "swav", "random")),
            paper_setups=("raf_expw", "raf_fer2013"),
            table=TableSpec(paper="Table 3", paper_by_target=True, baseline="Random init", reference="SwAV"),
        ),
        Experiment(
            "table4",
            "Table 4: CluP ablation, backbone x pseudo-label score",
            # Source rows keep the trained source classifier, as the authors' code does; the fresh-head variant is
            # its own labelled row.
            rows=(*(Row(f"{BACKBONE_LABELS[b]} + {s}", "clup", _clup(b, s))
                    for b in ("source", "swav") for s in ("confidence", "purity")),
                  Row("Source, fresh head + purity", "clup", _clup("source", "purity", source_head="fresh"))),
            table=TableSpec(paper="Table 4", paper_average=True, baseline="Source + confidence", reference="SwAV + purity"),
        ),
        Experiment(
            "fig3",
            "Figure 3: 2-D embedding of the target test features after adaptation",
            rows=(Row("SHOT", "shot", embedding=True), Row("CluP (DeepClusterV2)", "clup", _clup("deepclusterv2"), True),
                  Row("CluP (SwAV)", "clup", _clup("swav"), True)),
            paper_setups=("raf_fer2013",),
            first_seed_only=True,
            figures=(FigureSpec(FigureKind.EMBEDDING, "fig3"),),
        ),
        Experiment(
            "fig4",
            "Figure 4: CluP (SwAV) accuracy against the threshold Q, purity vs confidence",
            rows=tuple(Row(f"{s} Q={q}", "clup", _clup("swav", s, q=q), swept=("q",))
                       for s in ("purity", "confidence") for q in FIG4_Q),
            paper_setups=("afe_fer2013", "raf_fer2013"),
            figures=(FigureSpec(FigureKind.THRESHOLD_CURVE, "fig4"),),
        ),
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a UserError listing the known ones otherwise."""
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def get_experiments(experiment: str | Experiment | Sequence[str | Experiment]) -> list[Experiment]:
    """The experiments a ``sweep`` or ``plan_sweep`` argument names (a name, an ``Experiment``, or several)."""
    experiments = [experiment] if isinstance(experiment, (str, Experiment)) else list(experiment)
    return [get_experiment(e) if isinstance(e, str) else e for e in experiments]

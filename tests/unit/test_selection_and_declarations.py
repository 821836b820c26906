"""Selection rules, method labels and what experiments declare for reporting.

Selection rules are classes (DomainBed's ``SelectionMethod``): each prints the text the tables always printed
and picks, from a search's records, the one that maximises its value (the accuracy or a validator). Method labels
live on the method classes. Leaderboards and figures dispatch on what an experiment declares (its ``TableSpec``
and ``FigureSpec`` s), so every declared kind has a renderer. One markdown renderer serves every table.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from benchmark.config.errors import UserError
from benchmark.config.profiles import PROFILES

from benchmark.orchestration.experiments import EXPERIMENTS, Row
from benchmark.orchestration.report_specs import FigureKind, TableKind
from benchmark.orchestration.selection import (
    BestTestAccuracy,
    BestValidator,
    FixedHyperparameters,
    LinearProbe,
)
from benchmark.reporting.figures import DRAWERS, drawing
from benchmark.reporting.leaderboard import FRAMES
from benchmark.reporting.paper import BY_TABLE
from benchmark.reporting.results import summary_markdown, summary_table, to_markdown
from methods import registry
from methods.api import Method, Setting

RECORD = {"accuracy": 61.5, "validators": {"im": 0.25, "entropy": 0.5, "snd": 0.125}}


@pytest.mark.parametrize(("rule", "display", "value", "oracle"), [
    (FixedHyperparameters(), "fixed: paper hyperparameters", 61.5, False),
    (FixedHyperparameters((("q", 0.5),)), "fixed: paper hyperparameters but q=0.5", 61.5, False),
    (FixedHyperparameters((("q", 0.5), ("score", "purity"))),
     "fixed: paper hyperparameters but q=0.5, score=purity", 61.5, False),
    (LinearProbe(), "linear probe (target train labels)", 61.5, True),
    (BestValidator("im"), "search: best IM (unsupervised)", 0.25, False),
    (BestValidator("snd"), "search: best SND (unsupervised)", 0.125, False),
    (BestTestAccuracy(), "oracle: best target test accuracy", 61.5, True),
])
def test_each_rule_prints_its_text_and_values_a_record(rule, display, value, oracle):
    assert (rule.display, rule.value(RECORD), rule.oracle) == (display, value, oracle)


def _trial(number: int, accuracy: float, im: float, entropy: float = 0.0) -> dict:
    return {"trial": {"study": "search/shot/synth/tiny/seed0", "number": number}, "accuracy": accuracy,
            "validators": {"im": im, "entropy": entropy, "snd": 0.0}}


def test_each_rule_picks_from_the_same_trials_the_one_it_values_most_and_the_earliest_on_a_tie():
    trials = [_trial(0, 50.0, 0.9), _trial(1, 70.0, 0.1, entropy=1.0), _trial(2, 70.0, 0.9)]
    assert BestValidator("im").select(trials) is trials[0]  # 0 and 2 tie on IM: the earlier trial
    assert BestValidator("entropy").select(trials) is trials[1]
    assert BestTestAccuracy().select(trials) is trials[1]
    assert BestTestAccuracy().select(list(reversed(trials))) is trials[1]  # the order given does not matter
    assert BestValidator("im").select([]) is None


def test_an_unknown_validator_is_refused_when_the_rule_is_made():
    with pytest.raises(ValueError, match="unknown validator 'nope'; known: entropy, im, snd"):
        BestValidator("nope")


def test_a_search_has_no_objective_its_rules_are_every_validator_then_the_oracle():
    search = EXPERIMENTS["table1"].searches[0]
    assert search.rules == (BestValidator("entropy"), BestValidator("im"), BestValidator("snd"), BestTestAccuracy())
    job = search.job("table1", "synth", 0, "quick", slot=3)
    assert job.study_name == "search/shot/synth/quick/seed0" and not hasattr(job, "objective")


def test_every_profile_has_a_search_budget_and_a_profile_without_one_is_refused_not_given_zero_trials(monkeypatch):
    table1 = EXPERIMENTS["table1"]
    assert {name: table1.searches[0].trials_at(name) for name in PROFILES} == {"paper": 20, "quick": 2, "quick10": 2,
                                                                                "tiny": 0}
    monkeypatch.setitem(PROFILES, "quick12", replace(PROFILES["quick"], name="quick12"))
    with pytest.raises(UserError, match="the SHOT search has no trial budget for profile 'quick12'"):
        table1.jobs(("synth",), 1, "quick12")


def test_rows_select_by_fixed_hyperparameters_or_a_probe():
    assert Row("a", "clup", {"q": 0.7, "score": "purity"}, swept=("q",)).rule == FixedHyperparameters((("q", 0.7),))
    assert Row("b", "probe:swav").rule == LinearProbe()
    assert len(EXPERIMENTS["table1"].searches) == 1  # one search serves every selection line


def test_method_labels_live_on_the_classes():
    labels = {name: registry.get(name).label for name in ("source_only", "shot_im", "shot", "nrc", "aad",
                                                          "adacontrast", "dann", "cdan", "oracle")}
    assert labels == {"source_only": "Source only", "shot_im": "SHOT-IM", "shot": "SHOT", "nrc": "NRC", "aad": "AaD",
                      "adacontrast": "AdaContrast", "dann": "DANN", "cdan": "CDAN", "oracle": "Oracle (target labels)"}
    assert [row.label for row in EXPERIMENTS["table1"].rows if row.method != "clup"] == list(labels.values())


def test_a_plugin_without_a_label_is_labelled_by_its_name():
    class Plugin(Method):
        name = "my_plugin"
        setting = Setting.SFDA

        def adapt(self, source_model, data, ctx):
            return source_model

    class Relabelled(Plugin):
        name = "my_other_plugin"

    class Labelled(Plugin):
        name = "my_labelled_plugin"
        label = "My plugin"

    assert (Plugin.label, Relabelled.label, Labelled.label) == ("my_plugin", "my_other_plugin", "My plugin")
    shot = registry.get("shot")
    assert type("ShotVariant", (shot,), {"name": "shot_variant"}).label == "shot_variant"


def test_every_declared_table_and_figure_has_a_renderer():
    assert set(FRAMES) == set(TableKind) and set(DRAWERS) == set(FigureKind)
    names = []
    for experiment in EXPERIMENTS.values():
        assert experiment.table.paper is None or experiment.table.paper in BY_TABLE
        names += [figure.name for figure in experiment.figures]
    assert len(names) == len(set(names))  # no two figures write the same files
    assert drawing(FigureKind.THRESHOLD_CURVE) is EXPERIMENTS["fig4"]
    assert drawing(FigureKind.EMBEDDING) is EXPERIMENTS["fig3"]


def test_one_markdown_renderer_for_leaderboards_and_the_results_table():
    frame = pd.DataFrame([{"method": "SHOT", "seeds": 2}, {"method": "NRC", "seeds": 1}])
    assert to_markdown(frame) == "| method | seeds |\n|---|---|\n| SHOT | 2 |\n| NRC | 1 |"

    def record(method: str, setting: str, seed: int, accuracy: float, hparams: dict) -> dict:
        return {"method": method, "setting": setting, "setup": "synth", "profile": "tiny", "seed": seed,
                "accuracy": accuracy, "mean_class_accuracy": accuracy - 2.0, "hparams": hparams}

    records = [record("shot", "sfda", 0, 40.0, {"lr": 0.01}), record("shot", "sfda", 1, 43.0, {"lr": 0.01}),
               record("source_only", "source", 0, 30.5, {}), record("oracle", "oracle", 0, 70.25, {})]
    # The text the ``results`` command printed before the two renderers were merged, byte for byte, plus the machine
    # and configuration columns (records without a fingerprint: ``unknown``; without overrides or versions: ``-``).
    assert summary_markdown(summary_table(records)) == (
        "| method | setting | setup | accuracy (%) | mean class acc. (%) | seeds | hyperparameters | machine "
        "| configuration |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| source_only | source | synth | 30.50 +- 0.00 | 28.50 | 1 (0) | - | unknown | - |\n"
        "| shot | sfda | synth | 41.50 +- 2.12 | 39.50 | 2 (0,1) | lr=0.01 | unknown | - |\n"
        "| oracle | oracle | synth | 70.25 +- 0.00 | 68.25 | 1 (0) | - | unknown | - |"
    )

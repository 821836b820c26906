"""Selection rules, method labels and what experiments declare for reporting.

Selection rules are classes (DomainBed's ``SelectionMethod``): each prints the text the tables always printed
and reports the objective ``run_method`` is given; its value is the record's accuracy or validator. Method labels
live on the method classes. Leaderboards and figures dispatch on what an experiment declares (its ``TableSpec``
and ``FigureSpec`` s), so every declared kind has a renderer. One markdown renderer serves every table.
"""

from __future__ import annotations

import pandas as pd
import pytest

from benchmark.orchestration.experiments import EXPERIMENTS, Row, Search
from benchmark.orchestration.report_specs import FigureKind, TableKind
from benchmark.orchestration.selection import (
    BestTestAccuracy,
    BestValidator,
    FixedHyperparameters,
    LinearProbe,
    search_rule,
)
from benchmark.reporting.figures import DRAWERS, drawing
from benchmark.reporting.leaderboard import FRAMES
from benchmark.reporting.paper import BY_TABLE
from benchmark.reporting.results import summary_markdown, summary_table, to_markdown
from methods import registry
from methods.api import Method, Setting

RECORD = {"accuracy": 61.5, "validators": {"im": 0.25, "entropy": 0.5, "snd": 0.125}}


@pytest.mark.parametrize(("rule", "display", "objective", "oracle"), [
    (FixedHyperparameters(), "fixed: paper hyperparameters", "accuracy", False),
    (FixedHyperparameters((("q", 0.5),)), "fixed: paper hyperparameters but q=0.5", "accuracy", False),
    (FixedHyperparameters((("q", 0.5), ("score", "purity"))),
     "fixed: paper hyperparameters but q=0.5, score=purity", "accuracy", False),
    (LinearProbe(), "linear probe (target train labels)", "accuracy", True),
    (BestValidator("im"), "search: best IM (unsupervised)", "validator:im", False),
    (BestValidator("snd"), "search: best SND (unsupervised)", "validator:snd", False),
    (BestTestAccuracy(), "oracle: best target test accuracy", "accuracy", True),
])
def test_each_rule_prints_its_text_and_reports_the_objective_run_method_computes(rule, display, objective, oracle):
    assert (rule.display, rule.objective, rule.oracle) == (display, objective, oracle)
    expected = RECORD["accuracy"] if objective == "accuracy" else RECORD["validators"][objective.split(":")[1]]
    assert rule.value(RECORD) == expected == search_rule(objective).value(RECORD)


def test_a_search_objective_string_is_parsed_once_into_its_rule():
    assert search_rule("validator:im") == BestValidator("im") and search_rule("accuracy") == BestTestAccuracy()
    for bad in ("validator:", "loss", "validators:im"):
        with pytest.raises(ValueError, match="unknown objective"):
            search_rule(bad)
    with pytest.raises(ValueError, match="unknown objective 'validator:nope'"):
        BestValidator("nope").value(RECORD)
    # A search given an objective string (as before rules were classes) holds the rule; its jobs get the string.
    by_string = Search("SHOT", "shot", "validator:im", ("lr",), {"tiny": 1})
    assert by_string == Search("SHOT", "shot", BestValidator("im"), ("lr",), {"tiny": 1})
    assert by_string.objective == by_string.job("x", "synth", 0).objective == "validator:im"
    assert Search("SHOT", "shot", BestTestAccuracy(), ("lr",), {}).oracle


def test_rows_select_by_fixed_hyperparameters_or_a_probe():
    assert Row("a", "clup", {"q": 0.7, "score": "purity"}, swept=("q",)).rule == FixedHyperparameters((("q", 0.7),))
    assert Row("b", "probe:swav").rule == LinearProbe()
    table1 = EXPERIMENTS["table1"]
    assert [s.rule for s in table1.searches] == [BestValidator("im"), BestTestAccuracy()]


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

"""Human-readable reports fit an 80-column terminal, broken between clauses (never in a word)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from benchmark.reporting import report
from benchmark.reporting.report import WIDTH, wrap
from datasets.labels import CLASS_NAMES

#: A run record as ``run`` stores it (the fields ``print_run`` reads), with long-ish names and many stages.
RECORD = {
    "method": "adacontrast", "setting": "sfda", "setup": "raf_fer2013", "source_dataset": "rafdb",
    "target_dataset": "fer2013", "profile": "paper", "seed": 12, "accuracy": 58.333333333333336,
    "mean_class_accuracy": 50.455507576984665, "n_test": 12000, "source_test_accuracy": 92.66666666666666,
    "class_accuracy": dict(zip(CLASS_NAMES, [90.58, 78.70, 4.35, 93.81, 22.28, 25.15, 38.32])),
    "confusion": [[1250, 7, 0, 2, 1, 0, 3], [9, 133, 1, 18, 2, 0, 6], [2, 0, 1, 8, 0, 1, 11],
                  [2, 4, 0, 2730, 0, 0, 12], [10, 5, 4, 76, 45, 0, 62], [4, 1, 11, 57, 1, 41, 48],
                  [7, 0, 1, 115, 7, 2, 82]],
    "pseudo_labels": {"kept": 15970, "kept_fraction": 0.199625, "accuracy_vs_truth": 72.13525360050095},
    "seconds": {"data": 0.114, "source": 1200.071, "pretrain": 5400.5, "adapt": 20.461, "evaluate": 2.098,
                "embed": 3.2},
}


@pytest.fixture
def printed(monkeypatch) -> io.StringIO:
    """What the reports print, on a console far wider than 80 columns (so rich wraps nothing itself)."""
    out = io.StringIO()
    monkeypatch.setattr(report, "stdout", Console(file=out, width=200))
    return out


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_print_run_fits_80_columns(printed):
    report.print_run(RECORD)
    lines = _lines(printed)
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    text = printed.getvalue()
    assert "target test accuracy 58.33%  mean class accuracy 50.46%" in text
    assert "(n = 12000; source test accuracy 92.67%)" in text  # a clause kept whole on its line
    assert "pretrain 5400.5" in text and "Happiness" in text


def test_print_probes_and_calibration_fit_80_columns(printed):
    probe = {"target_dataset": "fer2013", "setup": "raf_fer2013", "profile": "paper", "seed": 0}
    report.print_probes([
        probe | {"backbone": "imagenet", "available": False,
                 "note": "profile 'quick' has no ImageNet initialisation (width 16, random init)"},
        probe | {"backbone": "source", "available": True, "accuracy": 50.0, "mean_class_accuracy": 40.0,
                 "note": "source model artifact d6cbdfe9cca222e7"},
    ])
    measures = ("source_on_source", "source_on_target", "target_on_target")
    report.print_calibration({"setup": "synth", "source": "synth-lab", "target": "synth-wild", "profile": "quick",
                              "seed": 0, "accuracy": dict(zip(measures, (90.1, 60.0, 85.0))),
                              "targets": dict(zip(measures, (">= 90", "<= 70", ">= 80"))),
                              "passed": dict.fromkeys(measures, True)})
    lines = _lines(printed)
    assert max(len(line) for line in lines) <= WIDTH, "\n".join(lines)
    assert any("trained with target train labels: oracle" in line for line in lines)


def test_wrap_breaks_at_the_strongest_gap_that_fits():
    text = "backbones: resnet18, resnet50; stems: imagenet, small; heads: shot, linear, linear_wn, cosine"
    assert wrap(text, "  ", width=60) == ["backbones: resnet18, resnet50; stems: imagenet, small;",
                                          "  heads: shot, linear, linear_wn, cosine"]
    assert wrap("short line", "  ") == ["short line"]
    assert wrap("a (b, c; d e) f", "", width=9) == ["a (b, c;", "d e) f"]  # inside brackets only when it must
    assert wrap("x" * 90 + " y", "  ") == ["x" * 90, "  y"]  # one word wider than a line overflows alone

"""Trials as JSON lines (``results export`` / ``results import``): a tiny sweep exported and imported into an
empty storage gives byte-identical leaderboards and figure data; export is deterministic and import
idempotent; a malformed line is one UserError naming its file and line, and nothing is imported; floats,
intermediate values and times round-trip exactly. And the committed ``leaderboards/records/`` regenerate every
committed leaderboard and figure's data."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from benchmark.cli import main
from benchmark.config.errors import UserError
from benchmark.orchestration.experiments import EXPERIMENTS, Experiment
from benchmark.orchestration.run import run_method
from benchmark.orchestration.sweep import sweep
from benchmark.reporting.figures import write_figures
from benchmark.reporting.leaderboard import write_leaderboards
from benchmark.reporting.results_page import write_results_page
from benchmark.store.record_files import RUNS_FILE, experiment_file, export_records, import_records
from benchmark.store.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "leaderboards" / "records"
HANDMADE = "handmade/exact"

_SOURCE_ONLY, _SHOT_IM = EXPERIMENTS["table1"].rows[:2]
#: Two experiments sharing a job (Source only): swept together, it is stored and exported once, under the first.
FIRST = Experiment("records_first", "one job", rows=(_SOURCE_ONLY,))
SECOND = Experiment("records_second", "two jobs, one shared", rows=(_SOURCE_ONLY, _SHOT_IM))


def _add_handmade(url: str) -> None:
    """A trial of no experiment with awkward floats, every distribution kind, intermediate values (NaN and
    infinity included) and set times; and a FAIL trial (not exported)."""
    study = optuna.create_study(study_name=HANDMADE, storage=open_storage(url), direction="maximize",
                                load_if_exists=True)
    trial = optuna.trial.create_trial(
        value=0.1 + 0.2,
        params={"lr": 1e-310 * 3, "layers": 7, "kind": None},
        distributions={"lr": FloatDistribution(1e-320, 1.0, log=True), "layers": IntDistribution(1, 9, step=2),
                       "kind": CategoricalDistribution([None, "a", 1.5])},
        user_attrs={"payload": {"nested": [1, -0.0, "±"], "accuracy": 2 / 3}},  # not in sorted order
        intermediate_values={0: 1 / 3, 2: float("nan"), 10: float("inf"), 1: -1e300},
    )
    trial.datetime_start = datetime(2024, 5, 6, 7, 8, 9, 123456)
    trial.datetime_complete = datetime(2024, 5, 6, 7, 9, 0)
    study.add_trial(trial)
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={"error": "boom"}))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage with a tiny sweep of two experiments on synth, a plain ``run`` of one swept job (same key: the
    later counts) and the hand-made trials."""
    url = f"sqlite:///{tmp_path_factory.mktemp('records') / 'results.db'}"
    report = sweep([FIRST, SECOND], ("synth",), seeds=1, profile="tiny", storage_url=url, device="cpu")
    assert report.jobs == 2 and not report.failed
    run_method("source_only", "synth", seed=0, profile="tiny", storage_url=url, device="cpu")
    _add_handmade(url)
    return url


def _reports(url: str, out: Path) -> dict[str, bytes]:
    """The leaderboards' markdown and the figures' CSV data written from ``url`` (tiny profile), by file name."""
    storage = open_storage(url)
    written = write_leaderboards(storage, out / "leaderboards", profile="tiny")
    written += write_figures(storage, out / "figures", profile="tiny", images=False)
    return {path.name: path.read_bytes() for path in written}


def _folder(path: Path) -> dict[str, bytes]:
    return {file.name: file.read_bytes() for file in sorted(path.iterdir())}


def _trials(url: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = open_storage(url)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).get_trials()
            for s in optuna.get_all_study_summaries(storage)}


def test_export_import_regenerates_leaderboards_and_figure_data_byte_identically(swept: str, tmp_path: Path):
    export_records(open_storage(swept), tmp_path / "records")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    report = import_records(open_storage(fresh), [tmp_path / "records"])
    assert (report.imported, report.skipped, report.shadowing) == (4, 0, 0)
    before, after = _reports(swept, tmp_path / "before"), _reports(fresh, tmp_path / "after")
    assert {"table1.md", "table2.md", "confusion_synth.csv", "class_recall_synth.csv"} <= before.keys()
    assert after == before
    export_records(open_storage(fresh), tmp_path / "again")
    assert _folder(tmp_path / "again") == _folder(tmp_path / "records")  # export -> import -> export: the same bytes


def test_hand_made_table1_with_searches_and_fig4_round_trip_byte_identically(tmp_path: Path):
    # No training: test_leaderboard's hand-made records (searches with 2 trials per seed, Fig. 4's grid), at quick.
    from tests.integration.test_leaderboard import _accuracy, _store

    url = f"sqlite:///{tmp_path / 'made.db'}"
    for job in EXPERIMENTS["table1"].jobs(("synth",), 2, "quick"):
        accuracy = _accuracy(job) + job.slot
        _store(url, job, accuracy)
    for job in EXPERIMENTS["fig4"].jobs(("synth",), 2, "quick"):
        _store(url, job, 50.0 + 10 * job.seed + dict(job.overrides)["q"] * (10 if "purity" in job.row else 5))
    export_records(open_storage(url), tmp_path / "records")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    import_records(open_storage(fresh), [tmp_path / "records"])
    reports = {}
    for name, source in (("before", url), ("after", fresh)):
        storage = open_storage(source)
        written = write_leaderboards(storage, tmp_path / name, profile="quick")
        written += write_figures(storage, tmp_path / name, profile="quick", images=False)
        reports[name] = {path.name: path.read_bytes() for path in written}
    assert {"table1.md", "fig4.md", "fig4_synth.csv"} <= reports["before"].keys()
    assert reports["after"] == reports["before"]


def test_export_is_deterministic_one_file_per_experiment_complete_trials_only(swept: str, tmp_path: Path):
    first = export_records(open_storage(swept), tmp_path / "one")
    export_records(open_storage(swept), tmp_path / "two")
    assert _folder(tmp_path / "one") == _folder(tmp_path / "two")
    assert {path.name: n for path, n in first.files.items()} == {"records_first.jsonl": 1, "records_second.jsonl": 1,
                                                                 RUNS_FILE: 2}
    assert first.left_out == 1  # the FAIL trial
    for path in first.files:
        for text in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(text)
            assert list(line) == sorted(line) and line["state"] == "COMPLETE"
    shot_im = json.loads((tmp_path / "one" / "records_second.jsonl").read_text())
    assert shot_im["user_attrs"]["job"]["experiment"] == "records_second"
    assert shot_im["study"] == "run/shot_im/synth/tiny"
    runs = [json.loads(t) for t in (tmp_path / "one" / RUNS_FILE).read_text().splitlines()]
    assert [line["study"] for line in runs] == [HANDMADE, "run/source_only/synth/tiny"]  # sorted by study
    assert experiment_file({"job": {"experiment": "table1"}}) == "table1.jsonl" and experiment_file({}) == RUNS_FILE


def test_a_second_export_removes_stale_records_files_only(swept: str, tmp_path: Path):
    out = tmp_path / "records"
    export_records(open_storage(swept), out)
    shutil.copy(out / RUNS_FILE, out / "gone.jsonl")
    (out / "notes.jsonl").write_text('{"something": "else"}\n')
    report = export_records(open_storage(swept), out)
    assert report.removed == [out / "gone.jsonl"] and (out / "notes.jsonl").exists()


def test_floats_intermediate_values_and_times_round_trip_exactly(swept: str, tmp_path: Path):
    export_records(open_storage(swept), tmp_path / "records")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    import_records(open_storage(fresh), [tmp_path / "records" / RUNS_FILE])
    (original,), (copy,) = _trials(swept)[HANDMADE][:1], _trials(fresh)[HANDMADE]
    assert copy.values == original.values == [0.1 + 0.2]
    assert copy.params == original.params and copy.distributions == original.distributions
    assert copy.user_attrs == original.user_attrs and math.copysign(1, copy.user_attrs["payload"]["nested"][1]) == -1
    assert list(copy.user_attrs["payload"]) == ["nested", "accuracy"]  # an attribute's own order is data: kept
    assert copy.datetime_start == original.datetime_start and copy.datetime_complete == original.datetime_complete
    assert sorted(copy.intermediate_values) == [0, 1, 2, 10]
    for step, value in original.intermediate_values.items():
        read = copy.intermediate_values[step]
        assert read == value or (math.isnan(value) and math.isnan(read))


def test_importing_twice_adds_nothing(swept: str, tmp_path: Path):
    export_records(open_storage(swept), tmp_path / "records")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert import_records(open_storage(fresh), [tmp_path / "records"]).imported == 4
    again = import_records(open_storage(fresh), [tmp_path / "records"])
    assert (again.imported, again.skipped, again.studies_created) == (0, 4, [])
    assert sum(len(trials) for trials in _trials(fresh).values()) == 4
    # Into the storage the records came from: every trial is already there.
    assert import_records(open_storage(swept), [tmp_path / "records"]).imported == 0


def test_a_malformed_line_is_one_user_error_naming_file_and_line_and_nothing_is_imported(
        swept: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "records"
    export_records(open_storage(swept), out)
    lines = (out / RUNS_FILE).read_text().splitlines()
    broken = json.loads(lines[1])
    broken["values"] = "high"
    (out / RUNS_FILE).write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(UserError, match=rf"{RUNS_FILE}:2: not a trial record \(values: 'high' is not valid"):
        import_records(open_storage(fresh), [out])
    assert _trials(fresh) == {}  # the good files and the good first line were not imported either
    (out / RUNS_FILE).write_text(lines[0] + "\n{not json\n")
    assert main(["results", "import", str(out), "--storage", fresh]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and f"{RUNS_FILE}:2: not a trial record" in error and "\n" not in error
    assert _trials(fresh) == {}


def test_the_results_command_shows_exports_and_imports(swept: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    out, fresh = tmp_path / "records", f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["results", "export", "--out", str(out), "--storage", swept]) == 0
    assert f"wrote {out / RUNS_FILE} (2 trials)" in capsys.readouterr().out
    assert main(["results", "--storage", fresh, "import", str(out)]) == 0  # --storage before the action counts too
    assert capsys.readouterr().out.startswith("imported 4 trial(s), skipped 0 already present, created 3 studies")
    assert main(["results", "import", str(out / RUNS_FILE), "--storage", fresh]) == 0
    assert capsys.readouterr().out.startswith("imported 0 trial(s), skipped 2 already present")
    assert main(["results", "--storage", fresh, "--setup", "synth"]) == 0  # the table, as before
    table = capsys.readouterr().out
    assert main(["results", "show", "--storage", fresh, "--setup", "synth"]) == 0
    assert capsys.readouterr().out == table and "source_only" in table


@pytest.mark.skipif(not RECORDS.is_dir(), reason="leaderboards/records/ is absent: no committed records to check yet")
def test_the_committed_records_regenerate_every_committed_leaderboard_and_figure_data(tmp_path: Path):
    """Import into an empty storage, then ``leaderboard`` and ``figures``: every committed table, the results page
    (docs/RESULTS.md) and every committed figure's data (the CSV beside each PNG/PDF; the images embed
    matplotlib's build metadata) is byte-identical, and no committed file is left without its regenerated twin."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    import_records(open_storage(url), [RECORDS])
    written = write_leaderboards(open_storage(url), tmp_path / "leaderboards")
    written += write_figures(open_storage(url), tmp_path / "figures", images=False)  # the CSVs: what is compared
    for folder, pattern in (("leaderboards", "*.md"), ("figures", "*.csv")):
        committed = sorted((ROOT / folder).glob(pattern))
        regenerated = sorted(path.name for path in written if path.parent.name == folder and path.match(pattern))
        assert regenerated == [path.name for path in committed]
        for path in committed:
            assert (tmp_path / folder / path.name).read_bytes() == path.read_bytes(), path.name
    boards = [path for path in written if path.suffix == ".md"]
    page = write_results_page(boards, tmp_path / "RESULTS.md")
    assert page.read_bytes() == (ROOT / "docs" / "RESULTS.md").read_bytes()  # never edited by hand

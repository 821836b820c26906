"""Leaderboards, figures and notebooks are pure functions of the storage: a small storage of hand-made records
gives the committed golden markdown exactly, Fig. 4 is drawn with both curves and the data behind them, and
the notebooks in ``notebooks/`` execute against it and write their figures."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.config.setups import SETUPS
from benchmark.orchestration.experiments import EXPERIMENTS, FIG4_Q, Experiment, Job
from benchmark.orchestration.report_specs import FigureKind, FigureSpec, TableKind, TableSpec
from benchmark.reporting.figures import draw, write_figures
from benchmark.reporting.leaderboard import StoredTrials, profiles_text, render, write_leaderboards
from benchmark.reporting.paper import SOURCE_ACCURACY
from benchmark.store.storage import open_storage
from benchmark.store.trial_runs import TrialRequest, trial_for_run
from datasets.labels import CLASS_NAMES
from methods.core.scores import encode_digits

GOLDEN = Path(__file__).parents[1] / "golden"


#: Target test images per setup in the hand-made records (accuracies are multiples of 0.5%: exact at 200).
N_TEST = 200


def _correct(job: Job, accuracy: float) -> str:
    """Per-image correctness right on exactly ``accuracy`` % of the images, which ones depending on row, setup and
    seed (a record's ``test_correct``)."""
    right = np.random.default_rng([zlib.crc32(f"{job.row}/{job.setup}".encode()), job.seed, job.slot]).permutation(
        N_TEST)[:round(accuracy * N_TEST / 100)]
    correct = np.zeros(N_TEST, dtype=np.int64)
    correct[right] = 1
    return encode_digits(correct)


def _record(job: Job, accuracy: float) -> dict:
    """A run record with the fields tables and figures read (accuracy-driven per-class recall and confusion,
    per-image correctness on the target test images); a search's trials rate with IM the lower accuracy higher
    (slot 0 has the lower accuracy), and on raf_fer2013 they are old ones, without per-image correctness."""
    correct = round(accuracy)
    confusion = [[correct if i == j else (100 - correct) // 6 for j in range(7)] for i in range(7)]
    old = job.kind == "search" and job.setup == "raf_fer2013"
    im = 1.0 - job.slot if job.kind == "search" else accuracy / 100.0
    target = SETUPS[job.setup].target
    return {
        "method": job.method, "setting": "sfda", "setup": job.setup, "profile": job.profile, "seed": job.seed,
        "target_dataset": target,
        "hparams": job.hparams(), "accuracy": accuracy, "mean_class_accuracy": accuracy - 1.0,
        "class_accuracy": {name: accuracy + i - 3.0 for i, name in enumerate(CLASS_NAMES)},
        "confusion": confusion, "n_test": N_TEST, "validators": {"im": im, "entropy": 0.5, "snd": 0.1},
        **({} if old else {"test_correct": _correct(job, accuracy)}),
        "versions": {"git": "0123abc"}, **_source(job),
    }


def _source(job: Job) -> dict:
    """The source model fields of a record: one source model per source dataset and seed, with its accuracy."""
    source = SETUPS[job.setup].source
    return {"source_test_accuracy": 80.0 + len(source) + 0.5 * job.seed,
            "artifacts": {"source": f"{source}-{job.seed}", "backbone": None, "built_now": {}}}


def _store(url: str, job: Job, accuracy: float, value: float | None = None, machine: str | None = None) -> None:
    """Store a hand-made record of ``job``; ``machine``: the label of its machine fingerprint (None: no fingerprint,
    as records made before they carried one)."""
    attrs = {"method": job.method, "setup": job.setup, "profile": job.profile, "seed": job.seed, "recipe": job.recipe,
             "job_key": job.key}  # as a sweep stores them
    hparams = job.hparams() if job.kind != "search" else {"lr": 0.01 * (1 + job.slot)}
    with trial_for_run(open_storage(url), TrialRequest(job.study_name, hparams, attrs=attrs)) as trial:
        record = _record(job, accuracy)
        record["hparams"] = hparams
        if machine is not None:
            record["machine"] = {"label": machine, "id": machine.lower()}
        trial.complete(record, value)


def _accuracy(job: Job) -> float:
    """Deterministic, distinct numbers per row, setup and seed."""
    return 40.0 + (sum(map(ord, job.row)) % 30) + (5.0 if job.setup == "synth" else 0.0) + 0.5 * job.seed


@pytest.fixture(scope="module")
def small_storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Table 1 on raf_fer2013 and synth (2 seeds, but the oracle's seed 1 on synth missing, the two search rows
    with 2 trials each) and Fig. 4 on synth (built once for the module's tests; they only read it)."""
    storage = f"sqlite:///{tmp_path_factory.mktemp('leaderboard') / 'results.db'}"
    for job in EXPERIMENTS["table1"].jobs(("raf_fer2013", "synth"), 2, "quick"):
        if (job.method, job.setup, job.seed) == ("oracle", "synth", 1):
            continue
        if job.kind == "search":
            accuracy = _accuracy(job) + job.slot
            _store(storage, job, accuracy)
        elif job.slot == 0:
            _store(storage, job, _accuracy(job))
    for job in EXPERIMENTS["fig4"].jobs(("synth",), 2, "quick"):
        _store(storage, job, 50.0 + 10 * job.seed + dict(job.overrides)["q"] * (10 if "purity" in job.row else 5))
    return storage


def test_table1_leaderboard_matches_the_golden_file(small_storage: str, tmp_path: Path):
    written = write_leaderboards(open_storage(small_storage), tmp_path, profile="quick", experiments=("table1",))
    assert written == [tmp_path / "table1.md"]
    produced = written[0].read_text()
    if os.environ.get("FERBENCH_UPDATE_GOLDEN"):
        (GOLDEN / "table1.md").write_text(produced)
    assert produced == (GOLDEN / "table1.md").read_text()


@pytest.fixture(scope="module")
def stored(small_storage: str) -> StoredTrials:
    return StoredTrials.load(open_storage(small_storage))


def _markdown_tables(markdown: str) -> list[pd.DataFrame]:
    """Every pipe table of a markdown text, as text frames."""
    tables, block = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif block:
            tables.append(pd.DataFrame(block[2:], columns=block[0]))
            block = []
    return tables


def test_the_markdown_shows_every_column_of_the_frame_once_with_the_same_cells(stored: StoredTrials):
    markdown, frame = render(EXPERIMENTS["table1"], ("raf_fer2013", "synth"), stored, "quick")
    main, deltas, gaps = _markdown_tables(markdown)  # the third: the search's selection gap
    assert list(gaps.columns) == ["search", "oracle minus", "raf_fer2013 gap", "synth gap", "average gap"]
    assert list(deltas.columns[:2]) == ["method", "setting"]
    assert list(main.columns) + list(deltas.columns[2:]) == list(frame.columns)
    shown = pd.concat([main, deltas.iloc[:, 2:]], axis=1)
    assert shown.equals(frame.astype(str))


def test_paired_differences_are_the_mean_differences_over_shared_seeds(stored: StoredTrials):
    _, frame = render(EXPERIMENTS["table1"], ("raf_fer2013", "synth"), stored, "quick")
    row = frame.set_index(["method", "setting"])
    assert [c for c in frame.columns if "Δ" in c] == [
        "raf_fer2013 Δ Source only", "synth Δ Source only", "average Δ Source only",
        "raf_fer2013 Δ CluP (SwAV)", "synth Δ CluP (SwAV)", "average Δ CluP (SwAV)"]
    shot = row.loc[("SHOT", "sfda")]
    assert shot["raf_fer2013 Δ Source only"].startswith("-9.00 [")  # 58.25 - 67.25, per image and seed
    assert shot["synth Δ CluP (SwAV)"].startswith("+0.25 [")  # 63.25 - 63.00
    assert shot["average Δ Source only"].startswith("-9.00 [") and shot["average Δ Source only"].endswith("]*")
    assert row.loc[("Source only", "source"), "synth Δ Source only"] == "ref"
    assert row.loc[("CluP (SwAV)", "sfda"), "average Δ CluP (SwAV)"] == "ref"
    # the oracle has one seed on synth: no interval there nor on average, one on raf_fer2013
    oracle = row.loc[("Oracle (target labels)", "oracle")]
    assert oracle["synth Δ Source only"] == "-" and oracle["average Δ CluP (SwAV)"] == "-"
    assert oracle["raf_fer2013 Δ Source only"].startswith("-20.00 [")
    assert oracle["synth per seed"] == "52.0/-" and oracle["raf_fer2013 per seed"] == "47.0/47.5"


def test_old_records_fall_back_to_seeds_and_say_so(stored: StoredTrials):
    markdown, frame = render(EXPERIMENTS["table1"], ("raf_fer2013", "synth"), stored, "quick")
    oracle_search = frame[frame.method == "SHOT (search, oracle)"].iloc[0]
    assert oracle_search.setting == "oracle" and oracle_search["raf_fer2013 Δ Source only"].endswith("†")
    assert "† Seeds only (test images not resampled), records without per-image correctness" in markdown
    assert "SHOT (search, oracle) on raf_fer2013" in markdown
    assert "'-' where 1 seed paired (2 needed): Oracle (target labels) on synth" in markdown
    assert "2000 resamples, seed 0" in markdown and "target test images with replacement" in markdown


def test_a_row_whose_seeds_ran_on_two_machines_is_marked(tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'results.db'}"
    for job in EXPERIMENTS["table1"].jobs(("synth",), 2, "quick"):
        if job.kind == "run" and job.slot == 0:
            machine = "AMD EPYC 7B13 (avx2)" if job.method == "shot" and job.seed == 1 else "Intel Xeon (avx512)"
            _store(storage, job, _accuracy(job), machine=machine)
    markdown, frame = render(EXPERIMENTS["table1"], ("synth",), StoredTrials.load(open_storage(storage)), "quick")
    marked = [method for method in frame.method if method.endswith("‡")]
    assert marked == ["SHOT ‡"]
    assert "Records from machines: AMD EPYC 7B13 (avx2); Intel Xeon (avx512)." in markdown
    assert "‡ SHOT: seeds from different machines" in markdown
    assert "AMD EPYC 7B13 (avx2) (seed 1); Intel Xeon (avx512) (seed 0)." in markdown


def test_records_without_a_fingerprint_count_as_one_machine_and_say_nothing(stored: StoredTrials):
    markdown, frame = render(EXPERIMENTS["table1"], ("raf_fer2013", "synth"), stored, "quick")
    assert not any(method.endswith("‡") for method in frame.method) and "machines" not in markdown


def test_the_reference_row_can_be_chosen(stored: StoredTrials):
    _, frame = render(EXPERIMENTS["table1"], ("synth",), stored, "quick", reference="SHOT")
    assert [c for c in frame.columns if "Δ" in c] == ["synth Δ Source only", "synth Δ SHOT"]
    _, frame = render(EXPERIMENTS["table1"], ("synth",), stored, "quick", reference="no such row")
    assert [c for c in frame.columns if "Δ" in c] == ["synth Δ Source only"]


#: The start of the footnote on how the paper's numbers were obtained, and of its CD-FER sentence.
PROTOCOL_NOTE = "The paper's numbers are, as the authors' released code (github.com/altndrr/clup) computes them, the best "
CD_FER_NOTE = "The paper's CDAN (its CADA) comes from the CD-FER benchmark: ResNet-50, best epoch."


def _shows_paper_numbers(frame: pd.DataFrame) -> bool:
    """Whether a leaderboard's frame prints any paper number: a paper column, or a recall cell with the paper's."""
    cells = frame.astype(str).stack()
    return any("paper" in column for column in frame.columns) or cells.str.contains("(paper ", regex=False).any()


@pytest.mark.parametrize("setups", [("raf_fer2013",), ("synth",), ("raf_fer2013", "synth")])
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_the_protocol_footnote_is_under_every_table_with_a_paper_column_and_only_there(
        stored: StoredTrials, name: str, setups: tuple[str, ...]):
    markdown, frame = render(EXPERIMENTS[name], setups, stored, "quick")
    shown = _shows_paper_numbers(frame)
    assert shown == (name in ("table1", "table4") or (name in ("table2", "table3") and "raf_fer2013" in setups))
    assert (PROTOCOL_NOTE in markdown) == shown
    assert (CD_FER_NOTE in markdown) == (shown and name == "table1")  # the only table with a CD-FER row


@pytest.mark.parametrize("setups", [("raf_fer2013", "synth"), ("afe_expw", "afe_fer2013"), ("synth",),
                                    ("afe_expw", "raf_expw", "synth")])
def test_the_authors_source_accuracy_is_shown_exactly_where_the_source_is_theirs(
        stored: StoredTrials, setups: tuple[str, ...]):
    assert SOURCE_ACCURACY == {"afe": 92.86, "rafdb": 83.90}
    assert set(SOURCE_ACCURACY) == {setup.source for setup in SETUPS.values() if setup.paper}
    markdown, _ = render(EXPERIMENTS["table1"], setups, stored, "quick")
    line = next(line for line in markdown.splitlines() if line.startswith("Source models"))
    parts = dict(part.split(": ", 1) for part in line.split("brackets): ", 1)[1].removesuffix(".").split("; "))
    assert list(parts) == list(dict.fromkeys(SETUPS[s].source for s in setups))
    for source, ours in parts.items():
        if source in SOURCE_ACCURACY:
            assert ours.endswith(f", authors' released checkpoint {SOURCE_ACCURACY[source]:.2f}")
        else:
            assert "authors'" not in ours
    if "raf_fer2013" in setups:  # two source models (seeds 0 and 1): 85.0 and 85.5
        assert parts["rafdb"].startswith("ours 85.25 ± 0.35 (2)")


def test_search_rows_show_the_selected_trial_and_oracle_is_labelled(small_storage: str, tmp_path: Path):
    text = write_leaderboards(open_storage(small_storage), tmp_path, profile="quick", experiments=("table1",))[0].read_text()
    search_lines = [line for line in text.splitlines() if line.startswith("| SHOT (search") and "trials" in line]
    assert [line.split(" | ")[0] for line in search_lines] == [
        "| SHOT (search, ENTROPY)", "| SHOT (search, IM)", "| SHOT (search, SND)", "| SHOT (search, oracle)"]
    honest, oracle = search_lines[1], search_lines[3]
    assert "search: best IM (unsupervised) over 2 trials" in honest and "| sfda |" in honest
    assert "oracle: best target test accuracy over 2 trials" in oracle and "| oracle |" in oracle
    # IM rates slot 0 (the lower accuracy) higher, the oracle picks slot 1 (one point more): a gap of +1.00 on
    # every seed and setup, paired over the same trials (on raf_fer2013 over seeds only: old records).
    gap = next(line for line in text.splitlines() if line.startswith("| SHOT | search: best IM"))
    assert gap.count("| +1.00 [") == 3 and "| +1.00 [+1.00, +1.00]*† |" in gap  # raf_fer2013, synth, average


def test_fig4_is_drawn_from_stored_trials_and_csv_only_writes_the_same_data(small_storage: str, tmp_path: Path):
    written = write_figures(open_storage(small_storage), tmp_path, profile="quick")
    for suffix in (".png", ".pdf", ".csv"):
        assert tmp_path / f"fig4_synth{suffix}" in written
        assert (tmp_path / f"fig4_synth{suffix}").stat().st_size > 0
    data = pd.read_csv(tmp_path / "fig4_synth.csv")
    assert set(data.score) == {"purity", "confidence"}
    for score, slope in (("purity", 10), ("confidence", 5)):
        part = data[data.score == score]
        assert sorted(part.q.unique()) == list(FIG4_Q) and len(part) == 2 * len(FIG4_Q)
        means = part.groupby("q").accuracy.mean()
        assert means.to_dict() == pytest.approx({q: 55.0 + q * slope for q in FIG4_Q})
    assert tmp_path / "confusion_synth.png" in written
    # ``figures --csv-only``: every CSV of the drawing above, byte for byte, and no image.
    assert main(["figures", "--storage", small_storage, "--out", str(tmp_path / "data"), "--profile", "quick",
                 "--csv-only"]) == 0
    csvs = sorted(path.name for path in written if path.suffix == ".csv")
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == csvs
    for name in csvs:
        assert (tmp_path / "data" / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_an_experiment_is_reported_as_it_declares_not_by_its_name(small_storage: str, tmp_path: Path):
    # Table 1's rows under another name, declared as a class-recall table beside the paper's Table 2, with a
    # class-recall figure: the leaderboard and the figure follow the declaration.
    rows = tuple(row for row in EXPERIMENTS["table1"].rows if row.label in ("SHOT-IM", "CluP (SwAV)"))
    custom = Experiment("custom", "Custom: per-class recall", rows, table=TableSpec(TableKind.CLASS_RECALL, "Table 2"),
                        figures=(FigureSpec(FigureKind.CLASS_RECALL, "custom_recall"),))
    stored = StoredTrials.load(open_storage(small_storage))
    markdown, frame = render(custom, ("raf_fer2013", "synth"), stored, "quick")
    assert list(frame.columns[:3]) == ["setup", "method", "seeds"] and list(frame.columns[3:]) == list(CLASS_NAMES)
    assert list(frame.method) == ["SHOT-IM", "CluP (SwAV)"] * 2 and set(frame.seeds) == {2}
    raf, synth = frame[frame.setup == "raf_fer2013"], frame[frame.setup == "synth"]
    assert raf.Surprise.str.contains("(paper ", regex=False).all()  # the paper's Table 2 is on raf_fer2013 only
    assert not synth.Surprise.str.contains("paper").any()
    written = draw(custom, custom.figures[0], stored, tmp_path, "quick")
    assert sorted(p.name for p in written) == sorted(f"custom_recall_{s}.{x}" for s in ("raf_fer2013", "synth")
                                                     for x in ("png", "pdf", "csv"))
    data = pd.read_csv(tmp_path / "custom_recall_synth.csv")
    assert set(data.method) == {"SHOT-IM", "CluP (SwAV)"} and len(data) == 2 * 2 * len(CLASS_NAMES)


@pytest.mark.parametrize("notebook", sorted(p.name for p in (Path(__file__).parents[2] / "notebooks").glob("*.ipynb")))
def test_notebooks_redraw_the_figures_from_the_storage(notebook: str, small_storage: str, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("FERBENCH_STORAGE", small_storage)
    monkeypatch.setenv("FERBENCH_FIGURES_OUT", str(tmp_path))
    monkeypatch.setenv("FERBENCH_PROFILE", "quick")  # small_storage's records; synth's own profile is quick10
    path = Path(__file__).parents[2] / "notebooks" / notebook
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    expected = {"fig4_threshold_sweep.ipynb": ["fig4_synth.png", "fig4_synth.csv"],
                "class_recall_confusion_embeddings.ipynb": ["class_recall_synth.png", "confusion_synth.png"]}[notebook]
    for name in expected:
        assert (tmp_path / name).stat().st_size > 0


def test_the_header_names_each_setups_profile_when_they_differ():
    assert profiles_text(("synth", "synth_negative")) == "profiles: synth quick10, synth_negative quick"
    assert profiles_text(("synth",)) == "profile: quick10"
    assert profiles_text(("synth", "synth_negative"), "quick") == "profile: quick"

"""The CLI's hostile-input matrix (issue 26), one section per class of case, so that a new command or option is
covered by its class and not only by the commands named here:

- **import**: a records line from a stranger is checked against the record schema; a bad one is one line naming
  the file, the line and the field, and nothing from its file is stored.
- **grouping**: runs that differ in profile overrides or code are never pooled or silently shadowed.
- **overrides**: a profile override is applied (wildcards too) or refused, and recorded typed.
- **options**: every integer option of every command follows one rule (seeds >= 0, counts >= 1, ...), and every
  option naming things must name something known.

The environment's cases (files and output paths, launchers, pipes and signals) are in ``test_hostile_environment.py``.

Every refusal is checked the same way (``_refused``): exit status 2, exactly one line ``error: ...`` on stderr,
no traceback. Commands run in-process (``benchmark.cli.main``) except where a real pipe or process is the point.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest

from benchmark.cli import build_parser, main
from benchmark.config.errors import UserError
from benchmark.config.options import MINIMUMS
from benchmark.orchestration.profile_resolution import resolve_profile
from benchmark.store.record_files import read_records
from benchmark.store.storage import open_storage
from methods import registry

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "leaderboards" / "records"
TABLE1 = RECORDS / "table1.jsonl"


def _refused(capsys: pytest.CaptureFixture, args: list[str], *needs: str) -> str:
    """Run ``args`` in-process; assert exit 2 and one ``error:`` line holding every text of ``needs``; return it."""
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for text in needs:
        assert text in lines[0], lines[0]
    return lines[0]


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url)
    return [trial for s in optuna.get_all_study_summaries(storage)
            for trial in optuna.load_study(study_name=s.study_name, storage=storage).get_trials()]


def _stored(url: str) -> int:
    return len(_trials(url))


def _line(number: int = 0) -> dict:
    """A committed table1 records line (a real run record), parsed."""
    return json.loads(TABLE1.read_text(encoding="utf-8").splitlines()[number])


def _source_only_lines() -> list[dict]:
    """The committed source-only run records on ``synth`` (one per seed), whatever their numbers."""
    return [line for line in map(json.loads, TABLE1.read_text(encoding="utf-8").splitlines())
            if line["user_attrs"]["record"]["method"] == "source_only"
            and line["user_attrs"]["record"]["setup"] == "synth"]


def _summary(lines: list[dict]) -> str:
    """How ``results show`` writes the mean +- std of these records' accuracies."""
    accuracies = np.array([line["user_attrs"]["record"]["accuracy"] for line in lines])
    return f"{accuracies.mean():.2f} +- {accuracies.std(ddof=1):.2f}"


def _code(line: dict) -> str:
    """A record's code version as the notes print it."""
    versions = line["user_attrs"]["record"]["versions"]
    return f"code {versions['package']} {versions['git']}"


def _write(path: Path, *lines: dict) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# --- import: the record schema -------------------------------------------------------------------


def _set(*keys: str, value: object):
    def damage(line: dict) -> None:
        target = line
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return damage


def _drop(*keys: str):
    def damage(line: dict) -> None:
        target = line
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return damage


RECORD = ("user_attrs", "record")
# (id, damage, the field named, the problem)
BAD_LINES = [
    ("accuracy-140", _set(*RECORD, "accuracy", value=140.0), "user_attrs.record.accuracy", "greater than the maximum"),
    ("accuracy-negative", _set(*RECORD, "accuracy", value=-5.0), "user_attrs.record.accuracy", "less than the minimum"),
    ("accuracy-string", _set(*RECORD, "accuracy", value="sixty"), "user_attrs.record.accuracy", "not of type 'number'"),
    ("mca-nan", _set(*RECORD, "mean_class_accuracy", value=float("nan")), "user_attrs.record.mean_class_accuracy",
     "not a finite number"),
    ("class-accuracy-inf", _set(*RECORD, "class_accuracy", "Fear", value=float("inf")),
     "user_attrs.record.class_accuracy.Fear", "not a finite number"),
    ("value-inf", _set("values", value=[float("inf")]), "values.0", "not a finite number"),
    ("confusion-negative", lambda line: line["user_attrs"]["record"]["confusion"][0].__setitem__(0, -3),
     "user_attrs.record.confusion.0.0", "less than the minimum"),
    ("n-test-float", _set(*RECORD, "n_test", value=1200.0), "user_attrs.record.n_test", "not of type 'integer'"),
    ("seed-negative", _set(*RECORD, "seed", value=-1), "user_attrs.record.seed", "less than the minimum"),
    ("seed-bool", _set(*RECORD, "seed", value=True), "user_attrs.record.seed", "not of type 'integer'"),
    ("unknown-method", _set(*RECORD, "method", value="magic"), "user_attrs.record.method", "unknown method 'magic'"),
    ("unknown-setup", _set(*RECORD, "setup", value="mars"), "user_attrs.record.setup", "'mars' is not one of"),
    ("unknown-setting", _set(*RECORD, "setting", value="cheat"), "user_attrs.record.setting", "'cheat' is not one of"),
    ("unknown-state", _set("state", value="WAITING"), "state", "'WAITING' is not one of"),
    ("no-accuracy", _drop(*RECORD, "accuracy"), "user_attrs.record", "'accuracy' is a required property"),
    ("no-study", _drop("study"), "the line", "'study' is a required property"),
    ("unknown-key", _set("bogus", value=1), "the line", "'bogus' was unexpected"),
    ("job-seed-negative", _set("user_attrs", "job", "seed", value=-2), "user_attrs.job.seed", "less than the minimum"),
]


@pytest.mark.parametrize(("damage", "field", "problem"), [case[1:] for case in BAD_LINES],
                         ids=[case[0] for case in BAD_LINES])
def test_a_bad_record_is_one_line_naming_file_line_and_field_and_nothing_of_its_file_is_stored(
        tmp_path, capsys, storage, damage, field, problem):
    bad = _line(1)
    damage(bad)
    path = _write(tmp_path / "mixed.jsonl", _line(0), bad)
    _refused(capsys, ["results", "import", str(path), "--storage", storage], f"{path}:2: ", f"({field}: ", problem)
    assert _stored(storage) == 0


def test_newer_records_may_carry_more_fields(tmp_path, capsys, storage):
    line = _line(0)
    line["user_attrs"]["record"]["machine"] = {"cpu": "x86_64", "threads": 1}
    line["user_attrs"]["provenance"] = "elsewhere"
    assert main(["results", "import", str(_write(tmp_path / "new.jsonl", line)), "--storage", storage]) == 0
    assert _stored(storage) == 1


@pytest.mark.skipif(not RECORDS.is_dir(), reason="no committed records")
def test_every_committed_record_meets_the_schema():
    assert len(read_records([RECORDS])) == sum(len(p.read_text().splitlines()) for p in RECORDS.glob("*.jsonl"))


# --- grouping: what ran -----------------------------------------------------------------------------


def _variant(line: dict, accuracy: float, **changes: object) -> dict:
    """``line`` as a run of another configuration: profile overrides and/or code versions changed."""
    line = copy.deepcopy(line)
    record = line["user_attrs"]["record"]
    record["accuracy"] = line["values"][0] = accuracy
    if "overrides" in changes:
        record["profile_values"]["overrides"] = changes["overrides"]
    if "git" in changes:
        record["versions"]["git"] = changes["git"]
    line["datetime_start"] = line["datetime_complete"] = "2030-01-01T00:00:00"  # later: it would count
    return line


def _show(capsys, storage: str) -> list[str]:
    capsys.readouterr()
    assert main(["results", "show", "--storage", storage]) == 0
    return [row for row in capsys.readouterr().out.splitlines() if row.startswith("| source_only ")]


def test_results_show_keeps_runs_of_other_overrides_apart(tmp_path, capsys, storage):
    committed = _source_only_lines()
    assert len(committed) == 5
    seed0, seed1 = (line for line in committed if line["user_attrs"]["record"]["seed"] in (0, 1))
    others = [_variant(seed0, 30.0, overrides={"source.epochs": 1}),
              _variant(seed1, 40.0, overrides={"source.epochs": 2})]
    _write(tmp_path / "committed.jsonl", *committed)
    _write(tmp_path / "others.jsonl", *others)
    assert main(["results", "import", str(tmp_path / "committed.jsonl"), str(tmp_path / "others.jsonl"),
                 "--storage", storage]) == 0
    rows = _show(capsys, storage)
    assert len(rows) == 3, rows
    assert any(_summary(committed) in row and "5 (0,1,2,3,4)" in row for row in rows)  # the committed row, untouched
    assert any("30.00 +- 0.00" in row and "source.epochs=1" in row for row in rows)
    assert any("40.00 +- 0.00" in row and "source.epochs=2" in row for row in rows)


def test_an_import_shadowing_another_configuration_says_so_and_the_leaderboard_flags_the_cell(
        tmp_path, capsys, storage):
    committed = _source_only_lines()
    _write(tmp_path / "committed.jsonl", *committed)
    assert main(["results", "import", str(tmp_path / "committed.jsonl"), "--storage", storage]) == 0
    later = _variant(committed[0], 50.0, git="abcdef0")
    capsys.readouterr()
    assert main(["results", "import", str(_write(tmp_path / "later.jsonl", later)), "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert f"replaces one of another configuration ({_code(committed[0])})" in out and "(code 0.1.0 abcdef0)" in out
    rows = _show(capsys, storage)
    assert len(rows) == 2 and any("abcdef0" in row and "50.00" in row for row in rows)  # not pooled in results
    assert main(["leaderboard", "--storage", storage, "--experiments", "table1", "--out", str(tmp_path / "b")]) == 0
    board = (tmp_path / "b" / "table1.md").read_text()
    pooled = board.partition("Mixed configurations: Source only on synth pools seeds of ")[2].partition(";")[0]
    assert sorted(pooled.split(" | ")) == sorted(["code 0.1.0 abcdef0", _code(committed[1])])


# --- overrides: applied or refused, recorded typed ---------------------------------------------------------


def test_a_wildcard_hyperparameter_override_reaches_every_method_over_the_profile_own_value():
    profile = resolve_profile("quick", {"hparams.*.epochs": "3"})  # quick sets shot's epochs to 5 itself
    assert profile.overrides == {"hparams.*.epochs": 3}  # typed
    for name in ("shot", "clup", "nrc"):
        assert registry.resolve_hparams(registry.get(name), {}, {}, profile)["epochs"] == 3
    both = resolve_profile("quick", {"hparams.*.epochs": "3", "hparams.shot.epochs": "7"})
    assert registry.resolve_hparams(registry.get("shot"), {}, {}, both)["epochs"] == 7  # the method's own wins
    assert registry.resolve_hparams(registry.get("aad"), {}, {}, both)["epochs"] == 3


def test_a_setup_value_does_not_silently_beat_a_user_override():
    from benchmark.config.setups import SETUPS

    profile = resolve_profile("paper", {"hparams.clup.q": "0.5"})
    assert SETUPS["raf_expw"].hparams["*"]["q"] == 0.7
    assert registry.resolve_hparams(registry.get("clup"), SETUPS["raf_expw"].hparams, {}, profile)["q"] == 0.5


@pytest.mark.parametrize(("path", "value", "needs"), [
    ("hparams.*.epochs", "0", "epochs=0 is out of range"),
    ("hparams.shot.epochs", "0", "epochs=0 is out of range"),
    ("hparams.*.q", "high", "expected a float"),
    ("hparams.*.nothing", "1", "declares no hyperparameter 'nothing'"),
    ("hparams.*", "1", "expected hparams.<method or *>.<hyperparameter>"),
])
def test_a_bad_hyperparameter_override_is_refused_before_anything_runs(capsys, storage, path, value, needs):
    _refused(capsys, ["run", "--method", "shot", "--setup", "synth", "--storage", storage, "--set", f"{path}={value}"],
             needs)
    with pytest.raises(UserError, match="profile override"):
        resolve_profile("quick", {path: value})


# --- options: one rule for integers, names that name something ---------------------------------------------


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                              argparse.ArgumentParser]]:
    """Every (sub)command of the CLI: its words and its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def _minimal_args(parser: argparse.ArgumentParser) -> list[str]:
    """Arguments that parse: each required option and positional given a placeholder (its first choice)."""
    args = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or not (action.required or not action.option_strings):
            continue
        if action.dest == "help":
            continue
        value = str(action.choices[0] if isinstance(action.choices, (list, tuple)) else "x")
        args += [value] if not action.option_strings else [action.option_strings[0], value]
    return args


INTEGER_OPTIONS = [(words, action.option_strings[0], action.dest)
                   for words, sub in _commands(build_parser()) for action in sub._actions
                   if action.dest in MINIMUMS and action.option_strings]


def test_every_integer_option_has_a_rule():
    """A new integer option must say its smallest value in ``MINIMUMS`` (then the test below covers it)."""
    integers = {(words, action.dest) for words, sub in _commands(build_parser()) for action in sub._actions
                if action.type is int}
    assert integers == {(words, dest) for words, _, dest in INTEGER_OPTIONS}
    seeded = {words[0] for words, option, _ in INTEGER_OPTIONS if option == "--seed"}
    assert {"run", "source", "calibrate", "pretrain", "probe"} <= seeded


@pytest.mark.parametrize(("words", "option", "dest"), INTEGER_OPTIONS,
                         ids=[f"{' '.join(w)} {o}" for w, o, _ in INTEGER_OPTIONS])
def test_every_integer_option_of_every_command_follows_one_rule(capsys, words, option, dest):
    parser = dict(_commands(build_parser()))[words]
    value = MINIMUMS[dest] - 1
    _refused(capsys, [*words, *_minimal_args(parser), option, str(value)],
             f"error: {option} {value}: must be at least {MINIMUMS[dest]}")


@pytest.mark.parametrize(("args", "needs"), [
    (["sweep", "--experiment", ""], "--experiment '': names nothing"),
    (["sweep", "--experiment", " , ", "--plan"], "--experiment ' , ': names nothing"),
    (["sweep", "--experiment", "table1", "--setups", ","], "--setups ',': names nothing"),
    (["probe", "--setup", "synth", "--backbones", ","], "--backbones ',': names nothing"),
    (["leaderboard", "--experiments", ","], "--experiments ',': names nothing"),
    (["leaderboard", "--experiments", "table9"], "unknown experiment 'table9'; known: table1"),
    (["leaderboard", "--reference", "No Such Row"], "--reference 'No Such Row': no row of table1"),
    (["sweep", "--experiment", "table9", "--plan"], "unknown experiment 'table9'"),
])
def test_an_option_naming_nothing_known_is_refused(tmp_path, capsys, storage, args, needs):
    extra = ["--out", str(tmp_path / "out")] if args[0] == "leaderboard" else []
    _refused(capsys, [*args, *extra, "--storage", storage], needs)
    assert not (tmp_path / "out").exists()

"""``sweep --plan``: jobs done or missing as the storage has them, the artifacts they need and whether they are
built, projections from stored runs; and it creates no trial. ``table1`` on ``synth`` at the ``tiny`` profile, in
a FERBENCH_HOME of its own (artifacts) that shares the session's prepared synthetic caches."""

from __future__ import annotations

import json
from collections import Counter

import optuna
import pytest

from benchmark.cli import main
from benchmark.store.storage import open_storage
from datasets import registry

PLAN = ["sweep", "--experiment", "table1", "--setups", "synth", "--profile", "tiny", "--device", "cpu", "--plan"]


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    """An empty FERBENCH_HOME whose ``cache/`` links the session's synthetic caches (prepared first)."""
    own = tmp_path / "home"
    (own / "cache").mkdir(parents=True)
    for name in ("synth-lab", "synth-wild"):
        (own / "cache" / name).symlink_to(registry.ensure(name), target_is_directory=True)
    monkeypatch.setenv("FERBENCH_HOME", str(own))
    return own


def _trials(url: str) -> int:
    storage = open_storage(url)
    return sum(len(optuna.load_study(study_name=s.study_name, storage=storage).get_trials(deepcopy=False))
               for s in optuna.get_all_study_summaries(storage))


def _plan(capsys, url: str, seeds: int = 1) -> dict:
    assert main([*PLAN, "--seeds", str(seeds), "--storage", url, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_lists_missing_jobs_and_artifacts_then_sees_a_run_and_never_creates_trials(own_home, storage, capsys):
    assert main([*PLAN, "--seeds", "1", "--storage", storage]) == 0
    printed = capsys.readouterr().out
    assert "totals: 11 jobs (0 done, 11 to run" in printed and "3 artifacts (3 to build" in printed
    assert "run `python -m benchmark bench --profile tiny` first" in printed  # no bench in this home

    before = _plan(capsys, storage)
    assert len(before["jobs"]) == 11 and {job["state"] for job in before["jobs"]} == {"missing"}
    assert {a["name"] for a in before["artifacts"]} == {
        "source model on synth-lab (tiny, seed 0)", "swav backbone on synth-wild (tiny, seed 0)",
        "deepclusterv2 backbone on synth-wild (tiny, seed 0)"}
    assert not any(a["built"] for a in before["artifacts"]) and all(a["folder"] for a in before["artifacts"])
    assert {job["basis"] for job in before["jobs"]} == {"unknown"}
    assert _trials(storage) == 0

    assert main(["run", "--method", "source_only", "--setup", "synth", "--profile", "tiny", "--device", "cpu",
                 "--storage", storage]) == 0
    capsys.readouterr()
    assert _trials(storage) == 1

    after = _plan(capsys, storage, seeds=2)
    states = {(job["row"], job["seed"]): job["state"] for job in after["jobs"]}
    assert states.pop(("Source only", 0)) == "done" and set(states.values()) == {"missing"}
    artifacts = {a["name"]: a for a in after["artifacts"]}
    source = artifacts.pop("source model on synth-lab (tiny, seed 0)")
    assert source["built"] and (own_home / "artifacts" / "source" / source["folder"]).is_dir()
    assert not any(a["built"] for a in artifacts.values())
    # Seed 1's source model and Source-only run are projected from the stored run of seed 0.
    assert artifacts["source model on synth-lab (tiny, seed 1)"]["basis"] == "stored (1 run)"
    seed1 = next(j for j in after["jobs"] if (j["row"], j["seed"]) == ("Source only", 1))
    assert seed1["basis"] == "stored (1 run)" and seed1["seconds"] > 0
    assert after["totals"]["done"] == 1 and after["totals"]["missing"] == 21
    assert _trials(storage) == 1


def test_the_plan_of_table1_has_one_search_per_method_setup_and_seed(own_home, storage, capsys):
    # quick runs 2 trials per search; every selection rule (validators, oracle) picks from them afterwards.
    plan = json.loads(_quick_plan(capsys, storage))
    trials = [job for job in plan["jobs"] if job["trial"]]
    assert {(job["row"], job["method"]) for job in trials} == {("SHOT", "shot")}
    per_search = Counter((job["setup"], job["seed"]) for job in trials)
    assert per_search == {("synth", 0): 2, ("synth", 1): 2}
    assert sorted(job["trial"] for job in trials) == ["#0", "#0", "#1", "#1"]


def test_the_printed_plan_fits_80_columns(own_home, storage, capsys):
    printed = _quick_plan(capsys, storage, json_output=False)
    assert "SHOT #1" in printed and max(map(len, printed.splitlines())) <= 80


def _quick_plan(capsys, storage: str, json_output: bool = True) -> str:
    quick = [*PLAN[:PLAN.index("--profile")], "--profile", "quick", *PLAN[PLAN.index("--profile") + 2:]]
    assert main([*quick, "--seeds", "2", "--storage", storage, *(["--json"] if json_output else [])]) == 0
    return capsys.readouterr().out

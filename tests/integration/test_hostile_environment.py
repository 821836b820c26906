"""The CLI's hostile-input matrix, second half: what the environment does to a command (``test_hostile_input.py``
has the first half and the rule every refusal follows, ``_refused``):

- **files and output paths**: unreadable inputs, a ``--out`` that is a file, a ``FERBENCH_HOME`` that is one.
- **launchers**: a refused launch leaves no trial WAITING.
- **pipes and signals**: a closed stdout and a second SIGTERM print no traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from benchmark.cli import data_commands, main
from benchmark.config.errors import UserError
from tests.integration.test_hostile_input import ROOT, TABLE1, _refused, _trials

# --- files and output paths ----------------------------------------------------------------------------------


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


# (command, what its --out is, a path that cannot be one, the problem)
OUTPUTS = [
    *[([command, "--storage", "{storage}"], "folder", where, problem)
      for command in ("leaderboard", "figures")
      for where, problem in ((_file, "is a file, not a folder"),
                             (lambda t: _file(t) / "below", "cannot be created"))],
    (["data", "show", "synth-lab"], "file", lambda t: t, "is a folder, not a file"),
    (["data", "show", "synth-lab"], "file", lambda t: _file(t) / "grid.png", "its folder"),
]


@pytest.mark.parametrize(("command", "where", "problem"), [(c, w, p) for c, _, w, p in OUTPUTS],
                         ids=[f"{c[0]}-{kind}-{i}" for i, (c, kind, _, _) in enumerate(OUTPUTS)])
def test_an_output_path_that_cannot_be_written_is_refused(tmp_path, capsys, storage, command, where, problem):
    path = where(tmp_path)
    args = [arg.replace("{storage}", storage) for arg in command]
    _refused(capsys, [*args, "--out", str(path)], f"--out {path}: ", problem)


@pytest.mark.parametrize("command", [["sweep", "--experiment", "table1", "--plan"],
                                     ["source", "--dataset", "synth-lab"]])
def test_a_binary_profile_file_is_refused(tmp_path, capsys, storage, command):
    path = tmp_path / "profile.toml"
    path.write_bytes(bytes(range(128, 256)))
    _refused(capsys, [*command, "--profile-file", str(path)], f"--profile-file {path}: not a TOML text file")


@pytest.mark.parametrize("home", ["file", "read-only"])
def test_data_prepare_refuses_a_home_it_cannot_write(tmp_path, capsys, monkeypatch, home):
    folder = _file(tmp_path) if home == "file" else tmp_path / "home"
    if home == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root ignores file permissions (the file case covers the same path)")
        folder.mkdir()
        folder.chmod(0o555)
    monkeypatch.setenv("FERBENCH_HOME", str(folder))
    try:
        _refused(capsys, ["data", "prepare", "synth-lab"], f"FERBENCH_HOME={folder} is not a writable folder")
    finally:
        folder.chmod(0o755)


# --- launchers -----------------------------------------------------------------------------------------------


def test_a_refused_launch_leaves_no_trial_waiting(capsys, storage, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no srun: not a SLURM cluster
    _refused(capsys, ["sweep", "--experiment", "table1", "--setups", "synth", "--launcher", "slurm",
                      "--storage", storage], "--launcher slurm: cannot submit from here")
    assert [t for t in _trials(storage) if t.state == TrialState.WAITING] == []


def test_a_launch_refused_after_enqueuing_withdraws_its_trials(storage, monkeypatch):
    from benchmark.orchestration import launchers
    from benchmark.orchestration import sweep as sweeps
    from benchmark.orchestration.experiments import EXPERIMENTS, Experiment

    class Refusing:
        def update_parameters(self, **parameters: object) -> None:
            pass

        def submit(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("sbatch: error: invalid partition specified: gpu")

    monkeypatch.setattr(launchers, "submitit_executor", lambda folder, cluster: Refusing())
    one = Experiment("hostile_one", "one job", rows=EXPERIMENTS["table1"].rows[:1])
    with pytest.raises(UserError, match=r"submitting the workers failed \(sbatch: error: invalid partition"):
        sweeps.sweep(one, ("synth",), seeds=1, profile="tiny", storage_url=storage, launcher="submitit-local")
    trials = _trials(storage)
    assert [t.state for t in trials] == [TrialState.FAIL]
    assert trials[0].user_attrs["error"].startswith("the launch failed: --launcher local: submitting the workers")


# --- pipes and signals ---------------------------------------------------------------------------------------


def test_a_reader_that_goes_away_is_no_traceback(tmp_path, storage):
    assert main(["results", "import", str(TABLE1), "--storage", storage]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FERBENCH_QUIET": "1"}
    process = subprocess.Popen([sys.executable, "-m", "benchmark", "results", "show", "--storage", storage],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    process.stdout.close()  # like `| head -0`: the first write finds no reader
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and err == "", err


def test_a_second_sigterm_while_the_first_is_handled_prints_no_traceback(capsys, monkeypatch):
    def interrupted(args: argparse.Namespace) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a bytecode boundary: the handler runs here
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # during clean-up: ignored, not a second KeyboardInterrupt

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(data_commands, "cmd_list", interrupted)
    try:
        assert main(["list"]) == 130
        os.kill(os.getpid(), signal.SIGTERM)  # and after it: still ignored until the next command installs it
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert capsys.readouterr().err == "interrupted\n"


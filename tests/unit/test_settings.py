"""Every method gets exactly what its setting allows, and the setting travels into records and tables.

The runs go through ``benchmark.orchestration.run.run_method`` at the tiny profile. In the setting checks the run stops
right after ``benchmark.orchestration.run._method_inputs`` built the ``data`` that ``run_method`` hands to ``adapt``
(captured), so every registered method (plugins included) is checked at the cost of data loading only; the
record and table checks replace ``adapt`` by one that returns the source model.
"""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from benchmark.cli import main
from benchmark.orchestration import run
from benchmark.orchestration.run import run_method
from benchmark.reporting.results import summary_markdown, summary_table
from benchmark.store.storage import completed_records, open_storage
from methods import registry
from methods.api import Method, RunContext, Setting
from methods.core.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages

ALL_METHODS = tuple(sorted(registry.available()))
SOURCE_FREE = tuple(name for name in ALL_METHODS if registry.get(name).setting is Setting.SFDA)
SYNTH_TARGET_TRAIN = 8000  # synth-wild's train split (see test_methods_run)


class _Captured(Exception):
    """Stops a run once the method's inputs are built."""


def _capture_inputs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Wrap ``run._method_inputs`` for one test: append the ``data`` it builds (what ``adapt`` would get) to the
    returned list, then stop the run."""
    seen: list[Any] = []
    build = run._method_inputs

    def capture(*args: Any, **kwargs: Any) -> Any:
        seen.append(build(*args, **kwargs))
        raise _Captured

    monkeypatch.setattr(run, "_method_inputs", capture)
    return seen


def _skip_adapt(monkeypatch: pytest.MonkeyPatch, cls: type[Method]) -> None:
    """Replace ``cls.adapt`` for one test by one that returns the source model unchanged."""

    def adapt(self: Method, source_model: nn.Module, data: Any, ctx: RunContext) -> nn.Module:
        return source_model

    monkeypatch.setattr(cls, "adapt", adapt)


def _assert_target_unlabelled(target: Any) -> None:
    assert isinstance(target, UnlabelledImages)
    assert len(target) == SYNTH_TARGET_TRAIN
    with pytest.raises(PermissionError):
        target.labels  # noqa: B018


def test_every_setting_is_covered():
    assert {registry.get(name).setting for name in ALL_METHODS} == set(Setting)
    assert {"dann", "cdan"} <= {name for name in ALL_METHODS if registry.get(name).setting is Setting.UDA}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_method_receives_exactly_what_its_setting_allows(method: str, tiny: str, storage: str, monkeypatch):
    cls = registry.get(method)
    seen = _capture_inputs(monkeypatch)
    with pytest.raises(_Captured):
        run_method(method, "synth", seed=0, profile=tiny, device="cpu", storage_url=storage)
    assert len(seen) == 1
    data = seen[0]
    if cls.setting is Setting.SOURCE:
        assert data is None
    elif cls.setting is Setting.SFDA:
        assert type(data) is SourceFreeData
        _assert_target_unlabelled(data.target)
        with pytest.raises(PermissionError):
            data.source  # noqa: B018
    elif cls.setting is Setting.UDA:
        assert type(data) is UdaData
        assert isinstance(data.source, LabelledImages)
        assert len(data.source.images) == len(data.source.labels) > 0
        assert data.source.images.shape[-2:] == data.target.images.shape[-2:]
        _assert_target_unlabelled(data.target)
    elif cls.setting is Setting.ORACLE:
        assert type(data) is OracleData
        assert isinstance(data.target, LabelledImages)
        assert len(data.target.labels) == SYNTH_TARGET_TRAIN
    else:  # a new setting needs its row here
        pytest.fail(f"setting {cls.setting!r} of {method!r} is not checked")


@pytest.mark.parametrize("method", SOURCE_FREE)
@pytest.mark.parametrize("reach", ["source split", "target labels"])
def test_source_free_method_cannot_reach_source_data_or_target_labels(
    method: str, reach: str, tiny: str, storage: str, monkeypatch
):
    def adapt(self: Method, source_model: nn.Module, data: SourceFreeData, ctx: RunContext) -> nn.Module:
        if reach == "source split":
            data.source  # noqa: B018
        else:
            data.target.labels  # noqa: B018
        return source_model

    monkeypatch.setattr(registry.get(method), "adapt", adapt)
    with pytest.raises(PermissionError):
        run_method(method, "synth", seed=0, profile=tiny, device="cpu", storage_url=storage)
    assert completed_records(open_storage(storage)) == []


def test_each_setting_travels_into_records_and_tables(tiny: str, storage: str, monkeypatch, capsys):
    # adapt is replaced (the real loops run in test_methods_run, test_adversarial...): the setting in the
    # record and the table comes from the class, through run_method and the storage. One method per setting.
    names = ("dann", "source_only", "shot_im", "oracle")
    for name in names:
        _skip_adapt(monkeypatch, registry.get(name))
    records = [run_method(name, "synth", seed=0, profile=tiny, device="cpu", storage_url=storage) for name in names]
    assert [r["setting"] for r in records] == ["uda", "source", "sfda", "oracle"]
    stored = completed_records(open_storage(storage))
    assert sorted((r["method"], r["setting"]) for r in stored) == sorted((r["method"], r["setting"]) for r in records)
    table = summary_markdown(summary_table(stored))
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()[2:]}
    assert rows == {"dann": "uda", "source_only": "source", "shot_im": "sfda", "oracle": "oracle"}
    assert list(rows)[0] == "source_only"  # the lower bound first
    capsys.readouterr()
    assert main(["results", "--storage", storage]) == 0  # the ``results`` command prints that very table
    assert capsys.readouterr().out == table + "\n"

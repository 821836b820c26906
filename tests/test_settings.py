"""Every method gets exactly what its setting allows, and the setting travels into records and tables.

The runs go through ``benchmark.run.run_method`` at the tiny profile; in the setting checks each method's
``adapt`` is replaced by one that records the ``data`` it was given and returns the source model, so every
registered method (plugins included) is checked at the cost of data loading and evaluation only.
"""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from benchmark.results import summary_table, to_markdown
from benchmark.run import run_method
from benchmark.storage import completed_records, open_storage
from methods import registry
from methods.base import Method, RunContext, Setting
from methods.inputs import LabelledImages, OracleData, SourceFreeData, UdaData, UnlabelledImages

ALL_METHODS = tuple(sorted(registry.available()))
SOURCE_FREE = tuple(name for name in ALL_METHODS if registry.get(name).setting is Setting.SFDA)
SYNTH_TARGET_TRAIN = 8000  # synth-wild's train split (see test_methods_run)


def _capture_adapt(monkeypatch: pytest.MonkeyPatch, cls: type[Method]) -> list[Any]:
    """Replace ``cls.adapt`` for one test by one that appends its ``data`` to the returned list."""
    seen: list[Any] = []

    def adapt(self: Method, source_model: nn.Module, data: Any, ctx: RunContext) -> nn.Module:
        seen.append(data)
        return source_model

    monkeypatch.setattr(cls, "adapt", adapt)
    return seen


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
    seen = _capture_adapt(monkeypatch, cls)
    record = run_method(method, "synth", seed=0, profile=tiny, device="cpu", storage=storage)
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
    assert record["setting"] == cls.setting.value
    assert [r["setting"] for r in completed_records(open_storage(storage))] == [cls.setting.value]


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
        run_method(method, "synth", seed=0, profile=tiny, device="cpu", storage=storage)
    assert completed_records(open_storage(storage)) == []


def test_uda_rows_say_uda_in_records_and_tables(tiny: str, storage: str, monkeypatch):
    # adapt is replaced (DANN's and CDAN's real loops run in test_methods_run and test_adversarial): the
    # setting in the record and the table comes from the class, through run_method and the storage.
    for name in ("dann", "cdan", "source_only"):
        _capture_adapt(monkeypatch, registry.get(name))
    records = [run_method(name, "synth", seed=0, profile=tiny, device="cpu", storage=storage)
               for name in ("dann", "cdan", "source_only")]
    assert [r["setting"] for r in records] == ["uda", "uda", "source"]
    table = to_markdown(summary_table(completed_records(open_storage(storage))))
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()[2:]}
    assert rows == {"dann": "uda", "cdan": "uda", "source_only": "source"}
    assert list(rows)[0] == "source_only"  # the lower bound first, then the UDA rows

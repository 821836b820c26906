"""The source-free contract holds by construction: no target labels, no source images for sfda methods."""

from __future__ import annotations

import copy

import pytest
import torch

from methods.core.inputs import SourceFreeData, UnlabelledImages


def _view() -> SourceFreeData:
    return SourceFreeData(target=UnlabelledImages(torch.zeros(5, 3, 8, 8, dtype=torch.uint8)))


def test_unlabelled_view_has_images_and_indices_only():
    view = _view()
    assert view.target.images.shape == (5, 3, 8, 8)
    assert view.target.indices.tolist() == [0, 1, 2, 3, 4]
    assert len(view.target) == 5
    for name in ("labels", "label", "targets_labels", "true_labels"):
        with pytest.raises(PermissionError, match="target labels are never given"):
            getattr(view.target, name)
    with pytest.raises(AttributeError):
        view.target.labels_ = 1  # no way to attach labels either (slots)


def test_source_free_data_has_no_source_split():
    view = _view()
    for name in ("source", "source_images", "labels"):
        with pytest.raises(PermissionError, match="no source images and no labels"):
            getattr(view, name)
    assert copy.copy(view).target is view.target  # ordinary protocols still work

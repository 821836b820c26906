"""Scoring predictions: the confusion counts, recall and accuracy of ``methods.core.scores``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from datasets.labels import CLASS_NAMES, NUM_CLASSES
from methods.core.scores import confusion_counts, score_predictions


def test_confusion_counts_are_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, 500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, NUM_CLASSES, 500))
    expected = confusion_matrix(labels, predictions, labels=list(range(NUM_CLASSES)))
    np.testing.assert_array_equal(confusion_counts(labels, predictions), expected)


def test_a_class_absent_from_the_split_is_nan_and_left_out_of_the_mean() -> None:
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 1, 1, 1])
    scores = score_predictions(predictions, labels)
    assert scores.accuracy == 75.0 and scores.n == 4
    assert scores.class_accuracy[CLASS_NAMES[0]] == 50.0 and scores.class_accuracy[CLASS_NAMES[1]] == 100.0
    assert math.isnan(scores.class_accuracy[CLASS_NAMES[2]])
    assert scores.mean_class_accuracy == 75.0
    assert scores.confusion[0] == [1, 1, 0, 0, 0, 0, 0] and sum(map(sum, scores.confusion)) == 4


@pytest.mark.parametrize("labels, predictions", [([0, 7], [0, 1]), ([0, 1], [-1, 1]), ([0, 1, 2], [0, 1])])
def test_values_that_are_not_class_indices_are_refused(labels: list[int], predictions: list[int]) -> None:
    with pytest.raises(ValueError):
        confusion_counts(np.array(labels), np.array(predictions))

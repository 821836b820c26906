"""Scores of predicted class indices (numpy only): top-1 accuracy, per-class recall and the confusion matrix
(percent), and the digit strings in which run records keep per-image predictions.

Numpy only: reading records (the reports' paired tables) and scoring a linear probe need no network library;
``methods.core.evaluation`` runs a network to get the predictions it scores here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from datasets.labels import CLASS_NAMES, NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against true labels.

    Attributes:
        accuracy: top-1 accuracy, percent.
        mean_class_accuracy: unweighted mean of per-class recall, percent (classes absent from the split
            are left out of the mean).
        class_accuracy: per-class recall by class name, percent (NaN for a class absent from the split).
        confusion: 7x7 counts, rows = true class, columns = predicted class.
        n: number of samples.
    """

    accuracy: float
    mean_class_accuracy: float
    class_accuracy: dict[str, float]
    confusion: list[list[int]]
    n: int

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(NUM_CLASSES, NUM_CLASSES) int64 counts, rows = true class, columns = predicted class, of (N,) class indices.

    scikit-learn's ``confusion_matrix`` gives the same counts (tested), but importing ``sklearn.metrics`` costs
    about 2 s of CPU in every CLI process that evaluates (it pulls in scipy.stats and pandas): a third of a warm
    run's start-up, for one ``bincount``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= NUM_CLASSES):
            raise ValueError(f"{name} must be class indices in 0..{NUM_CLASSES - 1}")
    flat = np.bincount(labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES * NUM_CLASSES)
    return flat.reshape(NUM_CLASSES, NUM_CLASSES)


def score_predictions(predictions: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score (N,) predicted class indices against (N,) true indices."""
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = confusion_counts(labels, predictions)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, 100.0 * np.diag(confusion) / support, np.nan)
    return Evaluation(
        accuracy=float(100.0 * (predictions == labels).mean()) if len(labels) else float("nan"),
        mean_class_accuracy=float(np.nanmean(recall)) if (support > 0).any() else float("nan"),
        class_accuracy={name: float(r) for name, r in zip(CLASS_NAMES, recall)},
        confusion=confusion.astype(int).tolist(),
        n=int(len(labels)),
    )


def encode_digits(values: np.ndarray) -> str:
    """(N,) integers 0..9 as one digit per item, in order: the record's ``test_predictions`` (class indices) and
    ``test_correct`` (1 where the prediction is right). Compact, text-diffable, and what a paired bootstrap over
    test images needs."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() > 9):
        raise ValueError("digits must lie in 0..9")
    return "".join(map(str, values.tolist()))


def decode_digits(encoded: str) -> np.ndarray:
    """Inverse of :func:`encode_digits`: (N,) int64."""
    return np.frombuffer(encoded.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")

"""The canonical 7-class FER label space shared by every dataset, method and report.

Index order is RAF-DB's (also the CD-FER benchmark's and the CluP authors'):
0 Surprise, 1 Fear, 2 Disgust, 3 Happiness, 4 Sadness, 5 Anger, 6 Neutral.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CLASS_NAMES: tuple[str, ...] = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
NUM_CLASSES: int = len(CLASS_NAMES)

#: FER2013 / ExpW code order (angry, disgust, fear, happy, sad, surprise, neutral) -> canonical index.
FER2013_TO_CANONICAL: tuple[int, ...] = (5, 2, 1, 3, 4, 0, 6)


def class_counts(labels: Sequence[int]) -> dict[str, int]:
    """Samples per canonical class, keyed by class name, all seven classes present (zero when absent)."""
    counts = dict.fromkeys(CLASS_NAMES, 0)
    for label in labels:
        counts[CLASS_NAMES[int(label)]] += 1
    return counts


def code_map(pairs: Mapping[int, int]) -> dict[int, int]:
    """Validate a dataset's code -> canonical-index map: every canonical class reached exactly once."""
    targets = sorted(pairs.values())
    if targets != list(range(NUM_CLASSES)):
        raise ValueError(f"label map must be a bijection onto 0..{NUM_CLASSES - 1}, got {dict(pairs)}")
    return dict(pairs)

"""Reference re-statement of the authors' CluP stage 1, for comparison tests only (loops, numpy, scikit-learn).

Source read (not copied): github.com/altndrr/clup

* ``src/systems/utils.py`` (commit 849e3560), ``_predict_classes_purity``: append 1, L2-normalise,
  ``sklearn.cluster.KMeans(n_clusters=num_prototypes).fit``, then ``_match_predictions`` (a loop over
  prototypes and classes: score = |cluster and class| / |cluster|, the match replaced only on a strictly larger
  score, starting from -1 / 0.0), then a loop over matches that gives each sample its cluster's class and score.
* ``cli/commands/clup.py`` (commit 2a6c99ce), ``CluP.run``: for each class, the samples labelled with it, and
  ``torch.topk(class_confidences, int(labeled_samples_size * len(class_idxs)))``.

Differences, all deliberate and stated:

* ``n_init=10`` is set explicitly (scikit-learn 1.1, which they used, defaulted to 10; 1.4+ defaults to "auto")
  and ``random_state`` is fixed (they left it unset).
* The top-k among equal scores: ``torch.topk``'s order is unspecified; here a stable sort keeps the lower sample
  index first. The number kept per class is theirs exactly.
* ``labeled_samples_size`` (their keep-fraction argument, e.g. 0.1) is derived from Q as ``round(1 - Q, 12)``.

Also: :func:`make_benchmark_data`, the synthetic "source-model features + teacher" shared by the tests.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

N_CLASSES = 7


def reference_normalise(features: np.ndarray) -> np.ndarray:
    """(N, D) features -> (N, D + 1) float32: append a column of ones, divide every row by its L2 norm."""
    embeddings = np.concatenate(
        [features.astype(np.float32), np.ones((len(features), 1), dtype=np.float32)], axis=1
    )
    return (embeddings.T / np.linalg.norm(embeddings, axis=1)).T


def reference_kmeans(
    embeddings: np.ndarray, n_clusters: int, seed: int, n_init: int | str = 10
) -> tuple[np.ndarray, float]:
    """scikit-learn k-means: (N,) int64 cluster labels and the inertia (sum of squared distances)."""
    fitted = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(embeddings)
    return fitted.labels_.astype(np.int64), float(fitted.inertia_)


def reference_match_predictions(
    prototype_labels: np.ndarray, predictions: np.ndarray, num_classes: int, num_prototypes: int
) -> tuple[dict[int, int], np.ndarray]:
    """Their ``_match_predictions``: per cluster the majority class (-1 if empty) and its score (float32)."""
    assert num_prototypes > num_classes
    match = {p: -1 for p in range(num_prototypes)}
    match_scores = {p: 0.0 for p in range(num_prototypes)}
    for prototype_idx in range(num_prototypes):
        for class_idx in range(num_classes):
            prototype_samples = prototype_labels == prototype_idx
            class_samples = predictions == class_idx
            with np.errstate(invalid="ignore", divide="ignore"):  # empty cluster: 0 / 0 = NaN, as in torch
                score = np.float32((prototype_samples * class_samples).sum()) / np.float32(prototype_samples.sum())
            score = float(score)
            if score > match_scores.get(prototype_idx, -1):
                match[prototype_idx] = class_idx
                match_scores[prototype_idx] = score
    return match, np.array(list(match_scores.values()), dtype=np.float32)


def reference_assign(
    prototype_labels: np.ndarray, match: dict[int, int], scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Their per-match loop: (N,) int64 cluster label of each sample and (N,) float32 cluster purity."""
    assignment_labels = prototype_labels.astype(np.int64) + 10000
    sample_scores = np.zeros(len(prototype_labels), dtype=np.float32)
    for prototype_idx, class_idx in match.items():
        is_match = assignment_labels == (prototype_idx + 10000)
        assignment_labels[is_match] = class_idx
        sample_scores[is_match] = scores[prototype_idx]
    return assignment_labels, sample_scores


def reference_select(pseudo_labels: np.ndarray, confidences: np.ndarray, q: float, num_classes: int) -> np.ndarray:
    """Their class loop: (N,) bool mask of the top int(labeled_samples_size * m_n) samples of each class."""
    labeled_samples_size = round(1.0 - q, 12)
    indices = np.arange(len(pseudo_labels))
    subset_idxs: list[int] = []
    for class_idx in range(num_classes):
        mask = pseudo_labels == class_idx
        class_confidences = confidences[mask]
        class_idxs = indices[mask]
        num_samples_class = int(labeled_samples_size * len(class_idxs))
        top = np.argsort(-class_confidences, kind="stable")[:num_samples_class]
        subset_idxs.extend(class_idxs[top].tolist())
    selected = np.zeros(len(pseudo_labels), dtype=bool)
    selected[subset_idxs] = True
    return selected


def reference_select_by_purity(
    prototype_labels: np.ndarray, predictions: np.ndarray, num_prototypes: int, q: float, num_classes: int = N_CLASSES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, purity and selection on a given clustering: (mask (N,) bool, labels (N,) int64, score (N,) float32)."""
    match, scores = reference_match_predictions(prototype_labels, predictions, num_classes, num_prototypes)
    labels, sample_scores = reference_assign(prototype_labels, match, scores)
    return reference_select(labels, sample_scores, q, num_classes), labels, sample_scores


def reference_select_by_confidence(probabilities: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Their "normal" mode: label = argmax, score = max probability; then the same class loop."""
    labels = probabilities.argmax(axis=1).astype(np.int64)
    confidences = probabilities.max(axis=1)
    return reference_select(labels, confidences, q, probabilities.shape[1]), labels, confidences


def reference_stage1(
    features: np.ndarray, probabilities: np.ndarray, n_clusters: int, q: float, seed: int, n_init: int | str = 10
) -> tuple[np.ndarray, np.ndarray, float]:
    """The whole reference stage 1 (purity): (mask (N,) bool, labels (N,) int64, k-means inertia)."""
    prototype_labels, inertia = reference_kmeans(reference_normalise(features), n_clusters, seed, n_init)
    predictions = probabilities.argmax(axis=1)
    mask, labels, _ = reference_select_by_purity(prototype_labels, predictions, n_clusters, q, probabilities.shape[1])
    return mask, labels, inertia


# FER2013 train-split class counts (angry, disgust, fear, happy, sad, surprise, neutral): an imbalanced prior.
FER2013_TRAIN_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)


def make_benchmark_data(
    n_samples: int, dim: int, seed: int, noise: float = 2.0, teacher_noise: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic stand-in for source-model features of a target split, with a shifted (imperfect) teacher.

    Features: a mixture of 7 Gaussians in ``dim`` dimensions with FER2013's class proportions (unit-variance
    class means, isotropic noise of std ``noise``), rows L2-normalised, float32. Teacher: a linear read-out of
    the features onto the class-mean directions (gain 8) plus Gaussian logit noise of std ``teacher_noise``,
    softmax; about 63-67 % accurate at the defaults, like a cross-domain FER source model.

    Returns:
        features (N, dim) float32, probabilities (N, 7) float32, truth (N,) int64.
    """
    rng = np.random.default_rng(seed)
    prior = np.array(FER2013_TRAIN_COUNTS, dtype=np.float64)
    means = rng.normal(size=(len(prior), dim))
    truth = rng.choice(len(prior), size=n_samples, p=prior / prior.sum())
    features = means[truth] + noise * rng.normal(size=(n_samples, dim))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    logits = features @ (means / np.linalg.norm(means, axis=1, keepdims=True)).T * 8.0
    logits += teacher_noise * rng.normal(size=logits.shape)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return features.astype(np.float32), probabilities.astype(np.float32), truth.astype(np.int64)

"""CluP stage 1: cluster-level pseudo-labels (Conti et al., BMVC 2022), as pure, vectorised tensor functions.

Pipeline (:func:`cluster_pseudo_labels`): append a constant 1 to the source-model features, L2-normalise the
rows, k-means into K clusters, give every cluster the majority teacher prediction of its members and a purity
(the fraction of members that agree with it), give every sample its cluster's label and purity, then keep, per
class, the purest samples.

Selection rule, as in the authors' code (github.com/altndrr/clup, commit 2a6c99ce, ``cli/commands/clup.py``,
the class loop of ``CluP.run``): for each class n, with m_n the number of samples whose (cluster) label is n,
keep the ``int(f * m_n)`` samples with the highest score, where f is their ``labeled_samples_size`` argument,
the fraction kept (0.1 for Q = 0.9). So "at or above the Q-th percentile" is a count, not an interpolated
threshold: k_n = floor((1 - Q) * m_n), no interpolation. We convert Q to f as ``round(1 - Q, 12)``, which
gives back exactly the literal they passed (1 - 0.9 is 0.09999999999999998 in floating point, and
``int(0.09999999999999998 * 100)`` would be 9, not 10).

Ties. (a) Majority: the lowest class index wins (their ``_match_predictions`` scans classes in increasing order
and replaces the match only on a strictly larger score). (b) Selection: the authors take ``torch.topk``, whose
order among equal scores is unspecified (and in practice not by index). Purity is constant within a cluster, so
the cut of k_n usually falls inside a group of equal scores; we break such ties by the lower sample index
(a stable sort), which keeps exactly their k_n samples per class and is deterministic.

Empty clusters get label -1 and purity 0 (their code: 0/0 is NaN, ``NaN > 0.0`` is false, so the match stays
-1 and the score 0.0); they have no members, so they never reach the selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from methods.core.kmeans import InitKind, kmeans
from methods.core.precision import full_precision

ScoreKind = Literal["purity", "confidence"]


@dataclass(frozen=True)
class Selection:
    """Pseudo-labels for every target sample, and which of them are kept for training.

    mask: (N,) bool, True for a kept sample.
    labels: (N,) int64 pseudo-label of every sample (kept or not): the cluster label, or the teacher's argmax.
    score: (N,) float, the ranking score: cluster purity in [0, 1] (float32), or the teacher's max softmax.
    """

    mask: torch.Tensor
    labels: torch.Tensor
    score: torch.Tensor


def keep_fraction(q: float) -> float:
    """The fraction of each class that is kept for percentile Q in [0, 1]: 1 - Q, rounded to 12 decimals."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    return round(1.0 - float(q), 12)


def cluster_labels(
    assignments: torch.Tensor,
    teacher: torch.Tensor,
    n_clusters: int,
    n_classes: int = 7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Majority teacher prediction and purity of every cluster.

    Args:
        assignments: (N,) integer cluster index of each sample, in [0, n_clusters).
        teacher: (N,) integer teacher prediction of each sample, in [0, n_classes).
        n_clusters: K.
        n_classes: C.

    Returns:
        label: (K,) int64, the most frequent teacher prediction in the cluster (ties: the lowest class index;
            empty cluster: -1).
        purity: (K,) float32 in [0, 1], the fraction of the cluster's members whose prediction equals its label
            (empty cluster: 0).
    """
    _check_index_vector(assignments, n_clusters, "assignments")
    _check_index_vector(teacher, n_classes, "teacher")
    if assignments.shape != teacher.shape:
        raise ValueError(f"assignments {tuple(assignments.shape)} and teacher {tuple(teacher.shape)} differ")
    joint = assignments.long() * n_classes + teacher.long()
    counts = torch.bincount(joint, minlength=n_clusters * n_classes).view(n_clusters, n_classes)
    sizes = counts.sum(dim=1)
    label = torch.argmax(counts, dim=1)  # first maximum: the lowest class index on ties
    agree = counts.gather(1, label.unsqueeze(1)).squeeze(1)
    purity = agree.to(torch.float32) / sizes.clamp(min=1).to(torch.float32)
    label = torch.where(sizes > 0, label, torch.full_like(label, -1))
    return label, purity


def select_by_purity(
    assignments: torch.Tensor,
    teacher: torch.Tensor,
    n_clusters: int,
    q: float,
    n_classes: int = 7,
) -> Selection:
    """CluP's selection: cluster label and purity per sample, then the purest (1 - Q) of every class.

    Args:
        assignments: (N,) integer cluster index of each sample, in [0, n_clusters).
        teacher: (N,) integer teacher prediction of each sample, in [0, n_classes).
        n_clusters: K.
        q: the percentile Q in [0, 1]; class n keeps int((1 - Q) * m_n) samples (module docstring).
        n_classes: C.

    Returns:
        :class:`Selection` with labels = the sample's cluster label, score = its cluster purity (float32).
    """
    label, purity = cluster_labels(assignments, teacher, n_clusters, n_classes)
    index = assignments.long()
    labels, score = label[index], purity[index]
    return Selection(mask=top_fraction_per_class(labels, score, q, n_classes), labels=labels, score=score)


def select_by_confidence(probabilities: torch.Tensor, q: float) -> Selection:
    """Confidence baseline: label = teacher argmax, keep the (1 - Q) most confident samples of every class.

    Args:
        probabilities: (N, C) teacher softmax probabilities.
        q: the percentile Q in [0, 1], same per-class rule as :func:`select_by_purity`.

    Returns:
        :class:`Selection` with labels = argmax (ties: the lowest class), score = the max probability (the
        input's dtype).
    """
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be (N, C), got shape {tuple(probabilities.shape)}")
    labels = torch.argmax(probabilities, dim=1)
    score = probabilities.gather(1, labels.unsqueeze(1)).squeeze(1)
    n_classes = int(probabilities.shape[1])
    return Selection(mask=top_fraction_per_class(labels, score, q, n_classes), labels=labels, score=score)


def top_fraction_per_class(labels: torch.Tensor, score: torch.Tensor, q: float, n_classes: int) -> torch.Tensor:
    """Per class n, mark the int((1 - Q) * m_n) highest-scoring samples among the m_n labelled n.

    Args:
        labels: (N,) integer labels; samples whose label is outside [0, n_classes) are never kept.
        score: (N,) float scores, higher is better.
        q: the percentile Q in [0, 1].
        n_classes: C.

    Returns:
        (N,) bool mask. Equal scores are ranked by the lower sample index.
    """
    if labels.shape != score.shape or labels.ndim != 1:
        raise ValueError(f"labels {tuple(labels.shape)} and score {tuple(score.shape)} must be equal 1-d shapes")
    fraction = keep_fraction(q)
    n_samples = labels.numel()
    bucket = torch.where((labels >= 0) & (labels < n_classes), labels.long(), n_classes)  # C = "never keep"
    counts = torch.bincount(bucket, minlength=n_classes + 1)
    quota = torch.floor(counts.to(torch.float64) * fraction).long()
    quota[n_classes] = 0
    by_score = torch.sort(score, descending=True, stable=True).indices
    order = by_score[torch.sort(bucket[by_score], stable=True).indices]  # by class, then score desc, then index
    sorted_bucket = bucket[order]
    starts = torch.cumsum(counts, dim=0) - counts
    rank = torch.arange(n_samples, device=labels.device) - starts[sorted_bucket]
    mask = torch.zeros(n_samples, dtype=torch.bool, device=labels.device)
    mask[order] = rank < quota[sorted_bucket]
    return mask


def pseudo_label_stats(selection: Selection, truth: torch.Tensor) -> dict[str, float]:
    """Report-only quality of a selection against the ground truth (never used to select).

    Args:
        selection: the output of a ``select_*`` function, N samples.
        truth: (N,) integer ground-truth labels.

    Returns:
        {"kept": number kept, "kept_fraction": kept / N in [0, 1], "accuracy_vs_truth": percent of the kept
        samples whose pseudo-label equals the truth (NaN when nothing is kept)}.
    """
    mask = selection.mask
    kept = int(mask.sum().item())
    total = int(mask.numel())
    correct = int((selection.labels[mask] == truth.to(selection.labels.device)[mask]).sum().item())
    return {
        "kept": kept,
        "kept_fraction": kept / total if total else float("nan"),
        "accuracy_vs_truth": 100.0 * correct / kept if kept else float("nan"),
    }


def normalise_with_bias(features: torch.Tensor) -> torch.Tensor:
    """Append a constant 1 to every row and L2-normalise the rows: (N, D) -> (N, D + 1) float32 (computed in
    float32 with autocast disabled, whatever the input's dtype)."""
    with full_precision(features):
        x = features.detach().float()
        x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
        return F.normalize(x, p=2.0, dim=1)


def cluster_pseudo_labels(
    features: torch.Tensor,
    teacher_probabilities: torch.Tensor,
    n_clusters: int,
    q: float,
    seed: int,
    score: ScoreKind = "purity",
    n_iter: int = 20,
    n_redo: int = 1,
    init: InitKind = "random",
) -> Selection:
    """The whole of CluP stage 1.

    Args:
        features: (N, D) source-model features of the target train split.
        teacher_probabilities: (N, C) source-model softmax on the same samples.
        n_clusters: K (clamped to N, see :mod:`methods.core.kmeans`).
        q: the per-class percentile Q in [0, 1].
        seed: k-means seed.
        score: "purity" (CluP) or "confidence" (the teacher's max softmax; no clustering is needed then, so
            none is done).
        n_iter, n_redo, init: k-means iterations (at most, per run), runs (the lowest objective is kept) and
            seeding ("random" or "kmeans++"); see :func:`methods.core.kmeans.kmeans`.

    Returns:
        :class:`Selection` over the N samples, on the features' device.
    """
    if features.shape[0] != teacher_probabilities.shape[0]:
        raise ValueError(f"{features.shape[0]} features but {teacher_probabilities.shape[0]} teacher rows")
    if score == "confidence":
        return select_by_confidence(teacher_probabilities, q)
    if score != "purity":
        raise ValueError(f"score must be 'purity' or 'confidence', got {score!r}")
    clusters = kmeans(normalise_with_bias(features), n_clusters, seed=seed, n_iter=n_iter, n_redo=n_redo, init=init)
    teacher = torch.argmax(teacher_probabilities, dim=1).to(clusters.assignments.device)
    n_classes = int(teacher_probabilities.shape[1])
    return select_by_purity(clusters.assignments, teacher, clusters.n_clusters, q, n_classes)


def _check_index_vector(values: torch.Tensor, size: int, name: str) -> None:
    """Raise ValueError unless ``values`` is a 1-d integer tensor with entries in [0, size)."""
    if values.ndim != 1 or values.is_floating_point() or values.dtype == torch.bool:
        raise ValueError(f"{name} must be a 1-d integer tensor, got {tuple(values.shape)} {values.dtype}")
    if size < 1:
        raise ValueError(f"{name}: the number of categories must be >= 1, got {size}")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got [{int(values.min())}, {int(values.max())}]")

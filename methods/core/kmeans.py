"""Euclidean k-means with faiss, on torch tensors.

Used by CluP stage 1 (cluster-level pseudo-labels). The authors clustered with scikit-learn's ``KMeans``
(k-means++ seeding, ``n_init=10`` Lloyd runs to convergence); we use faiss's ``Kmeans``: Lloyd for a fixed
number of iterations, seeded with K distinct samples drawn at random (faiss's default). It reaches an inertia
within a few percent of theirs in a small fraction of the time (docs/PERFORMANCE.md, section "CluP stage 1").
faiss's k-means++ seeding was tried too: at N = 28,709, D = 513, K = 1000 it doubled the time for the same
inertia, so the default seeding is kept.

Rules worth knowing:

* K larger than N: K is clamped to N. With K == N the optimum is known (every sample is its own cluster,
  inertia 0) and is returned directly, so ``centroids`` then has N rows, not the K that was asked for.
* faiss warns when there are fewer than 39 samples per centroid. CluP over-clusters on purpose (K = 1000 on
  FER2013's 28,709 images is about 29 per centroid), so ``min_points_per_centroid`` is set to 1, which silences
  the warning. ``max_points_per_centroid`` is set to N so that faiss never subsamples the training set.
* Deterministic for a given seed, input and thread count (faiss's own seed drives the initial draw).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import torch


@dataclass(frozen=True)
class KMeansResult:
    """The outcome of :func:`kmeans`, all on the input features' device.

    assignments: (N,) int64, cluster index in [0, K_eff) of each sample (nearest centroid, L2).
    centroids: (K_eff, D) float32, K_eff = min(K, N).
    inertia: sum over samples of the squared L2 distance to their centroid (units of the features, squared).
    """

    assignments: torch.Tensor
    centroids: torch.Tensor
    inertia: float

    @property
    def n_clusters(self) -> int:
        """K_eff, the number of centroids actually fitted."""
        return int(self.centroids.shape[0])


def faiss_has_gpu() -> bool:
    """Whether the installed faiss was built with GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def kmeans(
    features: torch.Tensor,
    n_clusters: int,
    seed: int,
    n_iter: int = 20,
    n_redo: int = 1,
) -> KMeansResult:
    """Cluster the rows of ``features`` into ``min(n_clusters, N)`` clusters (squared-L2 k-means).

    Args:
        features: (N, D) float tensor, any float dtype, CPU or CUDA. Clustered in float32.
        n_clusters: K >= 1; clamped to N (see the module docstring).
        seed: faiss's random seed (which samples become the initial centroids).
        n_iter: Lloyd iterations per run.
        n_redo: independent runs; the one with the lowest objective is kept.

    Returns:
        :class:`KMeansResult` with tensors on ``features.device``; the inertia is recomputed from the final
        centroids and assignments (faiss's own objective lags one update behind).
    """
    if features.ndim != 2 or not features.is_floating_point():
        raise ValueError(f"features must be a 2-d float tensor, got shape {tuple(features.shape)} {features.dtype}")
    n_samples, dim = features.shape
    if n_samples == 0:
        raise ValueError("cannot cluster an empty feature matrix")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    device = features.device
    if n_clusters >= n_samples:
        return _one_cluster_per_sample(features)

    x = np.ascontiguousarray(features.detach().to("cpu", torch.float32).numpy())
    km = faiss.Kmeans(
        dim,
        int(n_clusters),
        niter=int(n_iter),
        nredo=int(n_redo),
        seed=int(seed),
        min_points_per_centroid=1,
        max_points_per_centroid=n_samples,
        verbose=False,
        gpu=bool(device.type == "cuda" and faiss_has_gpu()),
    )
    km.train(x)
    sq_dist, nearest = km.assign(x)
    return KMeansResult(
        assignments=torch.from_numpy(nearest.astype(np.int64)).to(device),
        centroids=torch.from_numpy(np.ascontiguousarray(km.centroids, dtype=np.float32)).to(device),
        inertia=float(np.sum(sq_dist, dtype=np.float64)),
    )


def _one_cluster_per_sample(features: torch.Tensor) -> KMeansResult:
    """The exact solution for K >= N: sample i is cluster i, its centroid is itself, inertia 0."""
    n_samples = features.shape[0]
    return KMeansResult(
        assignments=torch.arange(n_samples, dtype=torch.int64, device=features.device),
        centroids=features.detach().to(torch.float32).clone(),
        inertia=0.0,
    )

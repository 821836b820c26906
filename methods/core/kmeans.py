"""Euclidean k-means with faiss, on torch tensors.

Used by CluP stage 1 (cluster-level pseudo-labels). The authors clustered with scikit-learn's ``KMeans``
(k-means++ seeding, ``n_init=10`` Lloyd runs to convergence); we use faiss's ``Kmeans``: Lloyd for at most
``n_iter`` iterations (faiss stops earlier when the objective stops changing), ``n_redo`` runs keeping the best,
seeded by default with K distinct samples drawn at random (faiss's default; ``init="kmeans++"`` uses faiss's
k-means++ D^2 sampling instead). The defaults (20 iterations, one run, random seeding) are what CluP ran before
these became settings; docs/METHODS.md (CluP) has the measured comparison with scikit-learn behind the
``paper`` profile's values.

Rules worth knowing:

* K larger than N: K is clamped to N. With K == N the optimum is known (every sample is its own cluster,
  inertia 0) and is returned directly, so ``centroids`` then has N rows, not the K that was asked for.
* faiss warns when there are fewer than 39 samples per centroid. CluP over-clusters on purpose (K = 1000 on
  FER2013's 28,709 images is about 29 per centroid), so ``min_points_per_centroid`` is set to 1, which silences
  the warning. ``max_points_per_centroid`` is set to N so that faiss never subsamples the training set.
* Restarts: run r (r = 0 .. n_redo - 1) is faiss's single run with seed ``(seed + r * 15486557) mod 2**31``
  (faiss's own step between the runs of its ``nredo``), so run 0 is exactly the run of ``n_redo=1``; the run with
  the lowest inertia (recomputed from its final centroids; the earlier run on ties) is kept. faiss's ``nredo``
  is not used: it ranks runs by the objective of their last assignment step, one centroid update behind, which
  can keep a run whose final inertia is not the lowest (tests/unit/test_pseudo_labels.py has such a case).
* Deterministic for a given seed, input and thread count (faiss's own seed drives every random draw).
* Always float32 with autocast disabled: bf16 features (an autocast pass upstream) are cast with ``.float()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np
import torch

from benchmark.config.errors import UserError
from methods.core.precision import full_precision

InitKind = Literal["random", "kmeans++"]
#: The seeding methods :func:`kmeans` accepts (``init``).
INITS: tuple[str, ...] = ("random", "kmeans++")
#: The seed step between restarts (faiss/Clustering.cpp uses it between the runs of its ``nredo``).
FAISS_REDO_STEP = 15486557


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
    init: InitKind = "random",
) -> KMeansResult:
    """Cluster the rows of ``features`` into ``min(n_clusters, N)`` clusters (squared-L2 k-means).

    Args:
        features: (N, D) float tensor, any float dtype, CPU or CUDA. Clustered in float32 (autocast disabled).
        n_clusters: K >= 1; clamped to N (see the module docstring).
        seed: faiss's random seed (which samples become the initial centroids); run r uses
            ``(seed + r * FAISS_REDO_STEP) mod 2**31``.
        n_iter: at most this many Lloyd iterations per run (>= 1); a run stops early when its objective no
            longer changes.
        n_redo: independent runs (>= 1) from different initial centroids; the one with the lowest inertia is kept
            (module docstring).
        init: "random" (K distinct samples drawn at random; faiss's default) or "kmeans++" (D^2 sampling).

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
    if n_iter < 1 or n_redo < 1:
        raise ValueError(f"n_iter and n_redo must be >= 1, got {n_iter} and {n_redo}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "kmeans++" and not hasattr(faiss, "ClusteringInitMethod_KMEANS_PLUS_PLUS"):
        raise UserError(f"k-means++ seeding needs faiss >= 1.14 (installed: {faiss.__version__}); "
                        "use kmeans_init=random or upgrade faiss-cpu")
    device = features.device
    with full_precision(features):
        if n_clusters >= n_samples:
            return _one_cluster_per_sample(features)
        x = np.ascontiguousarray(features.detach().float().cpu().numpy())
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for restart in range(int(n_redo)):
        result = _faiss_run(x, int(n_clusters), (int(seed) + restart * FAISS_REDO_STEP) % 2**31, int(n_iter), init,
                            gpu=bool(device.type == "cuda" and faiss_has_gpu()))
        if best is None or result[2] < best[2]:
            best = result
    assignments, centroids, inertia = best
    return KMeansResult(
        assignments=torch.from_numpy(assignments).to(device),
        centroids=torch.from_numpy(centroids).to(device),
        inertia=inertia,
    )


def _faiss_run(
    x: np.ndarray, n_clusters: int, seed: int, n_iter: int, init: str, gpu: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """One faiss k-means run on float32 ``x``: (N,) int64 assignments, (K, D) float32 centroids, the inertia."""
    options = {"init_method": faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS} if init == "kmeans++" else {}
    km = faiss.Kmeans(
        x.shape[1],
        n_clusters,
        niter=n_iter,
        nredo=1,
        seed=seed,
        min_points_per_centroid=1,
        max_points_per_centroid=x.shape[0],
        verbose=False,
        gpu=gpu,
        **options,
    )
    km.train(x)
    sq_dist, nearest = km.assign(x)
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    return nearest.astype(np.int64), centroids, float(np.sum(sq_dist, dtype=np.float64))


def _one_cluster_per_sample(features: torch.Tensor) -> KMeansResult:
    """The exact solution for K >= N: sample i is cluster i, its centroid is itself, inertia 0."""
    n_samples = features.shape[0]
    return KMeansResult(
        assignments=torch.arange(n_samples, dtype=torch.int64, device=features.device),
        centroids=features.detach().float().clone(),
        inertia=0.0,
    )

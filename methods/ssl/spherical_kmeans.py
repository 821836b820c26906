"""Spherical k-means as in DeepClusterV2 (FAIR ``init_memory``/``cluster_memory``; solo-learn ``KMeans``).

Random init (k distinct samples), a fixed number of Lloyd iterations on the unit sphere (assign by largest
dot product, centroid = re-normalised mean), empty clusters keep their previous centroid. Vectorised with
``index_add_`` and ``bincount``; the (N, k) similarity matrix is built in row chunks to bound memory.

Determinism: the initial draw depends only on the generator; on CPU the whole run is deterministic. On CUDA,
``index_add_`` on floats uses atomics unless ``torch.use_deterministic_algorithms(True)``, so centroid sums may
differ at rounding level between runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.core.precision import full_precision


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk: int) -> torch.Tensor:
    """(N,) int64 index of the centroid with the largest dot product for each row of ``x`` (N, D)."""
    return torch.cat([(part @ centroids.T).argmax(dim=1) for part in x.split(chunk)])


def _update(x: torch.Tensor, assignments: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(k, D) unit-norm mean direction of each cluster; a cluster with no member keeps its centroid."""
    k = centroids.shape[0]
    sums = torch.zeros_like(centroids).index_add_(0, assignments, x)
    counts = torch.bincount(assignments, minlength=k)
    return torch.where((counts > 0).unsqueeze(1), F.normalize(sums, dim=1), centroids)


def spherical_kmeans(
    x: torch.Tensor,
    k: int,
    iterations: int = 10,
    generator: torch.Generator | None = None,
    chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster unit-norm rows by cosine similarity.

    Args:
        x: (N, D) unit-norm features (any float dtype, any device); clustered in float32, autocast disabled.
        k: number of clusters, 1 <= k <= N.
        iterations: Lloyd iterations (DeepClusterV2: 10).
        generator: CPU generator for the initial draw of k distinct samples (``torch.randperm``).
        chunk: rows per block of the (N, k) similarity matmul.

    Returns:
        centroids (k, D) unit-norm float32 and assignments (N,) int64 in [0, k), both on ``x.device``; the
        assignments are recomputed from the returned centroids.
    """
    if x.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {tuple(x.shape)}")
    n_samples = x.shape[0]
    if k > n_samples:
        raise ValueError(
            f"DeepClusterV2 needs clusters <= samples: lower the number of prototypes (k={k}, N={n_samples})"
        )
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1, got k={k}, chunk={chunk}")
    x = x.float()
    first = torch.randperm(n_samples, generator=generator)[:k].to(x.device)
    with full_precision(x):  # the similarity matmuls stay fp32 under autocast
        centroids = F.normalize(x[first], dim=1)
        for _ in range(iterations):
            centroids = _update(x, _assign(x, centroids, chunk), centroids)
        return centroids, _assign(x, centroids, chunk)

"""A 2-D embedding of an adapted model's target test features (the CluP paper's Fig. 3).

The paper shows UMAP; we use scikit-learn's t-SNE (already a dependency; umap-learn would add numba and
llvmlite for one figure). The embedding is stored in the run record, so the figure is redrawn from the
results storage without the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmark.services.source import SplitTensors
from methods.core.inference import infer
from methods.core.models import Classifier

#: Most test samples embedded (a random subset, fixed by the run's seed, beyond it).
MAX_POINTS = 2000


def embed_features(features: np.ndarray, seed: int) -> np.ndarray:
    """(N, D) float features -> (N, 2) float32 t-SNE coordinates (cosine metric, PCA init, seeded)."""
    from sklearn.manifold import TSNE  # here: scikit-learn costs about 2 s to import, and only embeddings need it

    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(features.astype(np.float32)).astype(np.float32)


def embed_target_test(model: Classifier, test: SplitTensors, batch_size: int, seed: int) -> dict[str, Any]:
    """The record's ``embedding``: ``{"xy": (n, 2) list, "labels": (n,) true classes, "predictions": (n,),
    "indices": (n,) test indices}`` of at most ``MAX_POINTS`` test samples, from the backbone features."""
    rng = np.random.default_rng(seed)
    n = len(test.labels)
    indices = np.sort(rng.choice(n, size=MAX_POINTS, replace=False)) if n > MAX_POINTS else np.arange(n)
    outputs = infer(model, test.images[torch.from_numpy(indices).to(test.images.device)], batch_size)
    xy = embed_features(outputs.features.cpu().numpy(), seed)
    return {
        "method": "t-SNE of backbone features",
        "xy": np.round(xy, 4).tolist(),
        "labels": test.labels[indices].tolist(),
        "predictions": outputs.logits.argmax(dim=1).cpu().tolist(),
        "indices": indices.tolist(),
    }
